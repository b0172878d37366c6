//! Unit files: `unit::parse` on a mutable buffer holding exactly the file, as services.rs and
//! spawn.rs call it (`text[..n]` of a `UNIT_FILE_BYTES` array), then what the runtime does
//! with a loaded unit: `exec_line::split` of each command, `env::assignments` of each
//! `Environment=` line, `container_spec::binds`/`tmpfs_list` of the container keys.
//!
//! Invariants: at most `MAX_WARNINGS` warnings, and dropped ones only once that list is full;
//! every diagnostic names a line of the file (1..=its number of lines; 0 only for the two
//! whole-file errors); parsing is deterministic and does not depend on the bytes after the
//! file in the caller's array; strings of the unit borrow from the buffer; a unit that loads
//! never fails at start time on a syntax error of its command lines, `Environment=` values or
//! container mounts (only on limits the load cannot know: sizes after `$VAR` expansion).

use autoinit::env::{EnvError, ServiceEnv};
use autoinit::exec_line::{self, ARG_BYTES, MAX_ARGS, SplitError};
use autoinit::unit::{self, MAX_WARNINGS, Parsed, UNIT_FILE_BYTES, Unit};
use autoinit::container_spec;
use core::ffi::CStr;

/// The name the runtime expands `%n`, `%i`... with.
const UNIT_NAME: &str = "getty@tty\\x2d1.service";

/// Physical lines: what an editor numbers.
fn line_count(data: &[u8]) -> u32 {
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let last_open = !data.is_empty() && data.last() != Some(&b'\n');
    (newlines + usize::from(last_open)) as u32
}

fn describe(p: &Parsed<'_>) -> String {
    format!("{:?} {:?} {}", p.unit, p.warnings, p.dropped_warnings)
}

/// Two parses gave the same unit, diagnostics and count of dropped warnings. Compared by
/// value (`Unit` and `Diag` are `PartialEq`, strings by content), as strong as comparing
/// their `Debug` text and much cheaper: formatting each parse took a fifth of the time.
fn same(a: &Parsed<'_>, b: &Parsed<'_>) -> bool {
    a.unit == b.unit && a.warnings == b.warnings && a.dropped_warnings == b.dropped_warnings
}

pub fn check(data: &[u8]) {
    let lines = line_count(data);
    // The file exactly, as read into the caller's array.
    let mut exact = data.to_vec();
    let file = (exact.as_ptr() as usize, exact.len());
    let parsed = unit::parse(&mut exact);

    assert!(parsed.warnings.len() <= MAX_WARNINGS);
    assert!(parsed.dropped_warnings == 0 || parsed.warnings.is_full(), "warnings dropped before the list was full");
    for w in &parsed.warnings {
        assert!((1..=lines).contains(&w.line), "warning at line {} of a {lines}-line file: {w:?}", w.line);
    }
    match &parsed.unit {
        Err(d) if d.line == 0 => assert!(
            data.len() > UNIT_FILE_BYTES || d.message == "no ExecStart= in the unit",
            "error without a line: {d:?}"
        ),
        Err(d) => assert!(d.line <= lines, "error at line {} of a {lines}-line file: {d:?}", d.line),
        Ok(u) => {
            assert!(data.len() <= UNIT_FILE_BYTES);
            assert!(!u.exec_start.is_empty());
        }
    }

    // The same file in the caller's array, followed by other bytes than zeros.
    let mut array = vec![0xA5u8; UNIT_FILE_BYTES.max(data.len()) + 64];
    array[..data.len()].copy_from_slice(data);
    array[data.len()..].fill(b'\n');
    array[data.len()] = b'\\';
    let again = unit::parse(&mut array[..data.len()]);
    assert!(same(&again, &parsed), "parse depends on the bytes after the file:\n{}\n{}", describe(&again), describe(&parsed));
    // And twice the same: deterministic.
    let mut copy = data.to_vec();
    let third = unit::parse(&mut copy);
    assert!(same(&third, &parsed), "parse is not deterministic:\n{}\n{}", describe(&third), describe(&parsed));

    if let Ok(u) = &parsed.unit {
        runtime(u, file);
    }
}

/// What services.rs and spawn.rs do with a loaded unit.
/// `file`: the address and length of the buffer the unit was parsed in.
fn runtime(u: &Unit<'_>, (start, len): (usize, usize)) {
    // By address: joining continued lines in place leaves bytes that need not be UTF-8
    // between the lines.
    let inside = |s: &str| {
        let p = s.as_ptr() as usize;
        s.is_empty() || (p >= start && p + s.len() <= start + len)
    };
    for s in u.description.iter().chain(&u.after).chain(&u.requires).chain(&u.wants).chain(&u.environment) {
        assert!(inside(s), "{s:?} does not borrow from the file");
    }
    let lookup = |k: &str| -> Option<&'static str> {
        match k {
            "HOME" => Some("/home/x"),
            "OPTS" => Some("-a  -b\t-c"),
            _ => None,
        }
    };
    for cmd in u.exec_start_pre.iter().chain(&u.exec_start).chain(&u.exec_stop) {
        assert!(inside(cmd.raw));
        let mut buf = [0u8; ARG_BYTES];
        let mut argv: heapless::Vec<&CStr, MAX_ARGS> = heapless::Vec::new();
        let vars: crate::exec_line::Vars<'_, 'static> = if cmd.no_env_expansion { None } else { Some(&lookup) };
        match exec_line::split(cmd.raw, UNIT_NAME, vars, &mut buf, &mut argv) {
            Ok(_) => {
                assert!(!argv.is_empty());
                assert!(!cmd.argv0_override || argv.len() >= 2 || cmd.raw.contains('$'), "@ command {:?} split into {argv:?}", cmd.raw);
            }
            // Only what depends on the values substituted at start time.
            Err(SplitError::TooLong | SplitError::TooManyArgs) => {}
            Err(SplitError::RelativePath | SplitError::EmptyCommand) if cmd.raw.contains(['$', '%']) => {}
            Err(e) => panic!("command {:?} loaded but does not split: {e:?}", cmd.raw),
        }
    }
    let mut env = ServiceEnv::new();
    for line in &u.environment {
        match autoinit::env::assignments(line, UNIT_NAME, &mut env) {
            Ok(()) | Err(EnvError::TooLong | EnvError::TooManyVars) => {}
            Err(e) => panic!("Environment={line:?} loaded but fails at start: {e:?}"),
        }
    }
    for (list, ro) in [(&u.bind_paths, false), (&u.bind_read_only_paths, true)] {
        for v in list {
            container_spec::binds(v, ro, |b| {
                assert!(inside(b.source) && inside(b.dest));
                Ok(())
            })
            .expect("a loaded BindPaths= value splits");
        }
    }
    for v in &u.temporary_file_system {
        container_spec::tmpfs_list(v, |t| {
            assert!(inside(t.path));
            Ok(())
        })
        .expect("a loaded TemporaryFileSystem= value splits");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for u in [
            "[Service]\nExecStart=/bin/true\n",
            "[Unit]\nDescription=x\n",
            "[Service]\nExecStart=/bin/echo \\\n  a b\n# c\nEnvironment=A=1 \"B=2 3\"\n",
            "[Service]\nExecStart=@/bin/sh\n",
            "[Service]\nExecStart=/bin/sh -c 'unterminated\n",
            "[Service]\nExecStart=/bin/true \\",
            "\u{feff}[Service]\r\nExecStart=/bin/true\r\nBogus=1\n[X-Foo]\na=b\n[Weird]\nc=d\n",
        ] {
            super::check(u.as_bytes());
        }
        super::check(&vec![b'\n'; 9000]);
    }
}
