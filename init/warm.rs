//! Warming the page cache of a unit before an upgrade restarts it.
//!
//! Right after the swap, the new image's squashfs has a cold page cache: a unit restarted on
//! it would read its unit file and decompress its program while it is down. A short-lived
//! child reads them first, while the old process still serves (for the next unit, during
//! the previous one's settle time), so the downtime holds only the stop and a warm start.
//! Reading is all it does: a unit that cannot be read or parsed is warmed as far as it goes,
//! and the restart reports the real error.

use crate::exec_line::{self, Program};
use crate::log::Log;
use crate::unit::{self, Unit};
use core::ffi::CStr;
use heapless::Vec;
use syscall::fs::{self, OFlags};
use syscall::process::{self, Fork, Pid};
use syscall::signal::{self, MaskHow, SigSet};

/// At most this many bytes are read from each file (a program larger than this is warmed
/// only in part: the warm child must stay short).
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// The programs a unit runs on the host when it starts (ExecStartPre=, then ExecStart=), in
/// that order: `f(path, how)` for each, with `how` saying whether `path` is absolute or a
/// bare name to look up in [`exec_line::SEARCH_PATH`]. A unit with its own root
/// (`RootImage=`, `RootDirectory=`) runs ExecStart= from that root: only ExecStartPre= counts.
/// Commands that do not split are skipped; `$VAR`s are not expanded (a program named by a
/// variable is not warmed).
pub fn for_each_program(u: &Unit<'_>, name: &str, mut f: impl FnMut(&CStr, Program)) {
    let own_root = u.root_image.is_some() || u.root_directory.is_some();
    let start: &[unit::Command<'_>] = if own_root { &[] } else { &u.exec_start };
    for cmd in u.exec_start_pre.iter().chain(start.iter()) {
        let mut buf = [0u8; exec_line::ARG_BYTES];
        let mut argv: Vec<&CStr, { exec_line::MAX_ARGS }> = Vec::new();
        if let Ok(how) = exec_line::split(cmd.raw, name, None, &mut buf, &mut argv) {
            if let Some(&program) = argv.first() {
                f(program, how);
            }
        }
    }
}

/// Forks the child that reads unit `name`'s file and programs (through the root's links, so
/// from the image now at `/rofs_root`) and exits 0. PID 1 reaps it like any child.
pub fn spawn(_log: &Log, name: &str) -> Result<Pid, syscall::Errno> {
    match process::fork()? {
        Fork::Parent(pid) => Ok(pid),
        Fork::Child => {
            let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
            warm_unit(name);
            process::exit_group(0)
        }
    }
}

// Never inlined into `spawn`: its buffers must be on the child's stack only, not probed in
// PID 1's frame.
#[inline(never)]
fn warm_unit(name: &str) {
    let mut text = [0u8; unit::UNIT_FILE_BYTES];
    let Ok(n) = crate::spawn::read_unit_file(name, &mut text) else { return };
    let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
    let Ok(u) = parsed.unit else { return };
    for_each_program(&u, name, |program, how| match how {
        Program::Absolute => {
            let _ = read_through(program);
        }
        Program::Search => {
            let mut pbuf = [0u8; 256];
            for dir in exec_line::SEARCH_PATH {
                if let Some(p) = exec_line::search_candidate(dir, program, &mut pbuf) {
                    if read_through(p) != Err(syscall::Errno::ENOENT) {
                        break;
                    }
                }
            }
        }
    });
}

/// Reads `path` to its end (at most [`MAX_FILE_BYTES`]), which leaves it in the page cache.
fn read_through(path: &CStr) -> Result<(), syscall::Errno> {
    let fd = fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    while total < MAX_FILE_BYTES {
        match fs::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(syscall::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(text: &str) -> std::vec::Vec<(std::string::String, Program)> {
        let mut bytes = text.as_bytes().to_vec();
        let parsed = unit::parse(&mut bytes);
        let u = parsed.unit.expect("the test unit parses");
        let mut out = std::vec::Vec::new();
        for_each_program(&u, "web", |p, how| out.push((p.to_str().unwrap_or("?").to_owned(), how)));
        out
    }

    #[test]
    fn pre_then_start_with_prefixes_and_quotes() {
        let got = programs(
            "[Service]\nExecStartPre=-/usr/bin/mkdir -p /run/web\nExecStartPre=+\"/usr/sbin/set up\" x\nExecStart=@/bin/busybox httpd -f\n",
        );
        assert_eq!(
            got,
            [
                ("/usr/bin/mkdir".to_owned(), Program::Absolute),
                ("/usr/sbin/set up".to_owned(), Program::Absolute),
                ("/bin/busybox".to_owned(), Program::Absolute),
            ]
        );
    }

    #[test]
    fn bare_names_are_searched_and_variables_not_expanded() {
        let got = programs("[Service]\nExecStart=sleep 100\nExecStartPre=$TOOL arg\n");
        assert_eq!(got, [("$TOOL".to_owned(), Program::Search), ("sleep".to_owned(), Program::Search)]);
    }

    #[test]
    fn a_unit_with_its_own_root_warms_only_what_runs_on_the_host() {
        let got = programs("[Service]\nRootImage=/data/box.img\nExecStartPre=/bin/true\nExecStart=/bin/sh -c 'sleep 1'\n");
        assert_eq!(got, [("/bin/true".to_owned(), Program::Absolute)]);
    }
}
