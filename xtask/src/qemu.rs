//! Drives a QEMU system emulator through its serial console, as a person at a terminal would.
//!
//! QEMU runs with `-serial stdio` on pipes. A reader thread appends everything the guest prints
//! to a buffer (and, raw, to `target/qemu-logs/<name>.log`); [`Vm::expect`] waits for text to
//! appear after a cursor, [`Vm::run`] types a shell command and returns its output. Every wait
//! has a timeout, every failure quotes the last console lines and names the log, and a console
//! that shows `Kernel panic` fails the wait at once. Dropping a [`Vm`] kills QEMU.

use crate::board::Board;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines of console quoted in an error.
const TAIL_LINES: usize = 40;

/// What to boot.
pub struct Boot<'a> {
    pub board: &'a Board,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// Appended to the board's command line.
    pub extra_cmdline: &'a str,
    /// Raw disk images, attached read-only in this order with the board's `qemu.disk_device`.
    pub disks: &'a [PathBuf],
}

/// How a guest is run, beyond what [`Boot`] says. The default: read-only disks, and a guest
/// reboot ends QEMU.
#[derive(Copy, Clone, Debug, Default)]
pub struct VmOptions {
    /// Attach the disks writable: the guest may change them (give each test its own copy).
    pub writable_disks: bool,
    /// A guest reboot restarts the guest in the same QEMU (no `-no-reboot`).
    pub reboot: bool,
    /// Caps the writes to the first disk at this many bytes per second (QEMU's
    /// `throttling.bps-write`): a test that cuts the power stretches a copy it must interrupt.
    pub first_disk_write_bps: Option<u64>,
}

impl Boot<'_> {
    /// The QEMU command line (without the serial/display options, which depend on the use).
    pub fn command(&self) -> Result<Command> {
        self.command_with(VmOptions::default())
    }

    /// [`Boot::command`] with `opts`.
    pub fn command_with(&self, opts: VmOptions) -> Result<Command> {
        let q = self.board.qemu.as_ref().with_context(|| format!("board {} has no [qemu] table", self.board.name))?;
        let mut cmd = Command::new(&q.system);
        let mut append = self.board.cmdline.clone();
        if !self.extra_cmdline.trim().is_empty() {
            append.push(' ');
            append.push_str(self.extra_cmdline.trim());
        }
        cmd.args(["-nodefaults", "-no-user-config", "-accel", "tcg"]);
        if !opts.reboot {
            cmd.arg("-no-reboot");
        }
        cmd
            .args(["-machine", &q.machine, "-cpu", &q.cpu, "-m", &q.memory_mb.to_string()])
            .arg("-kernel")
            .arg(self.kernel)
            .arg("-initrd")
            .arg(self.initrd)
            .args(["-append", &append]);
        if let Some(bios) = &q.bios {
            cmd.args(["-bios", bios]);
        }
        if !self.disks.is_empty() {
            let dev = q.disk_device.as_deref().with_context(|| {
                format!("board {} has no qemu.disk_device to attach a disk with", self.board.name)
            })?;
            for (i, d) in self.disks.iter().enumerate() {
                // QEMU option values escape a comma by doubling it. Read-only by default: guests
                // booted at the same time share the images, and the boot stage mounts them
                // read-only.
                let file = d.to_str().with_context(|| format!("disk path {} is not UTF-8", d.display()))?.replace(',', ",,");
                let ro = if opts.writable_disks { "" } else { ",readonly=on" };
                let throttle = match opts.first_disk_write_bps {
                    Some(bps) if i == 0 => format!(",throttling.bps-write={bps}"),
                    _ => String::new(),
                };
                cmd.args(["-drive", &format!("file={file},format=raw,if=none,id=d{i}{ro}{throttle}")])
                    .args(["-device", &format!("{dev},drive=d{i}")]);
            }
        }
        Ok(cmd)
    }
}

/// Console text seen so far, shared with the reader threads.
#[derive(Default)]
struct Console {
    /// Everything printed, with `\r` removed.
    text: String,
    /// Both of QEMU's output pipes are closed (it exited).
    closed: u8,
}

type Shared = Arc<(Mutex<Console>, Condvar)>;

/// A running QEMU guest.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Shared,
    /// Byte offset in the console text after which [`Vm::expect`] looks.
    cursor: usize,
    log: PathBuf,
    /// Sequence number for command markers.
    seq: u32,
    shell_ready: bool,
}

/// `target/qemu-logs/`.
pub fn log_dir() -> PathBuf {
    crate::root().join("target/qemu-logs")
}

impl Vm {
    /// Starts QEMU; the console is logged to `target/qemu-logs/<name>.log`. With `echo` the
    /// console is also copied to this process's stdout as it arrives.
    pub fn start(boot: &Boot, name: &str, echo: bool) -> Result<Vm> {
        Vm::start_full(boot, name, echo, VmOptions::default(), &[])
    }

    /// [`Vm::start`] with more QEMU options after the console's `-serial stdio`, so that a
    /// further `-serial` there is the guest's second serial port.
    pub fn start_with(boot: &Boot, name: &str, echo: bool, extra_args: &[String]) -> Result<Vm> {
        Vm::start_full(boot, name, echo, VmOptions::default(), extra_args)
    }

    /// [`Vm::start`] with `opts`.
    pub fn start_opts(boot: &Boot, name: &str, echo: bool, opts: VmOptions) -> Result<Vm> {
        Vm::start_full(boot, name, echo, opts, &[])
    }

    /// [`Vm::start`] with `opts` and `extra_args` after the console's `-serial stdio`.
    pub fn start_full(boot: &Boot, name: &str, echo: bool, opts: VmOptions, extra_args: &[String]) -> Result<Vm> {
        std::fs::create_dir_all(log_dir())?;
        let log = log_dir().join(format!("{name}.log"));
        let mut cmd = boot.command_with(opts)?;
        cmd.args(["-serial", "stdio", "-display", "none", "-monitor", "none"]).args(extra_args);
        let mut logf = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        writeln!(logf, "# {cmd:?}")?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let console: Shared = Arc::default();
        let logf = Arc::new(Mutex::new(logf));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        spawn_reader(stdout, console.clone(), logf.clone(), echo);
        spawn_reader(stderr, console.clone(), logf, echo);
        Ok(Vm {
            stdin: child.stdin.take(),
            child,
            console,
            cursor: 0,
            log,
            seq: 0,
            shell_ready: false,
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole console so far (`\r` removed).
    pub fn text(&self) -> String {
        self.console.0.lock().unwrap().text.clone()
    }

    /// An error carrying the last console lines and the log's path.
    pub fn fail(&self, what: impl std::fmt::Display) -> anyhow::Error {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n    ");
        anyhow::anyhow!("{what}\n  last console lines:\n    {tail}\n  full log: {}", self.log.display())
    }

    /// Fails if the console shows a kernel panic.
    pub fn check_no_kernel_panic(&self) -> Result<()> {
        if self.text().contains("Kernel panic") {
            return Err(self.fail("the console shows a kernel panic"));
        }
        Ok(())
    }

    /// Waits until `f(console, cursor)` returns `Some((end, value))` (`end`: an absolute offset
    /// to which the cursor then moves) or the timeout passes.
    fn wait_for<T>(&mut self, what: &str, timeout: Duration, mut f: impl FnMut(&str, usize) -> Option<(usize, T)>) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.console;
        let mut c = lock.lock().unwrap();
        loop {
            if let Some((end, v)) = f(&c.text, self.cursor) {
                self.cursor = end;
                return Ok(v);
            }
            let panicked = c.text.contains("Kernel panic");
            let closed = c.closed >= 2;
            let now = Instant::now();
            if panicked || closed || now >= deadline {
                drop(c);
                let why = if panicked {
                    "the kernel panicked".to_string()
                } else if closed {
                    format!("QEMU exited ({})", self.exit_status_text())
                } else {
                    format!("timed out after {:.0} s", timeout.as_secs_f64())
                };
                return Err(self.fail(format!("waiting for {what}: {why}")));
            }
            c = cvar.wait_timeout(c, (deadline - now).min(Duration::from_millis(500))).unwrap().0;
        }
    }

    fn exit_status_text(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(s)) => s.to_string(),
            _ => "status unknown".into(),
        }
    }

    /// Waits for `text` on the console after the cursor; moves the cursor past it.
    pub fn expect(&mut self, text: &str, timeout: Duration) -> Result<()> {
        self.wait_for(&format!("'{text}'"), timeout, |t, cur| t[cur..].find(text).map(|i| (cur + i + text.len(), ())))
    }

    /// Waits for a complete line (after the cursor) containing `text`; returns the whole line and
    /// moves the cursor to its end.
    pub fn expect_line(&mut self, text: &str, timeout: Duration) -> Result<String> {
        self.wait_for(&format!("a line containing '{text}'"), timeout, |t, cur| {
            let i = cur + t[cur..].find(text)?;
            let end = i + t[i..].find('\n')?;
            let start = t[..i].rfind('\n').map_or(0, |s| s + 1);
            Some((end + 1, t[start..end].to_string()))
        })
    }

    /// Waits for a complete line after the cursor for which `want` holds, and returns it (the
    /// cursor moves to its end). A line containing one of `stop` that comes first fails the wait
    /// at once: a boot that has gone past the point where the line should have appeared.
    pub fn expect_line_where(
        &mut self,
        what: &str,
        want: impl Fn(&str) -> bool,
        stop: &[&str],
        timeout: Duration,
    ) -> Result<String> {
        let found = self.wait_for(what, timeout, |t, cur| {
            let mut start = cur;
            while let Some(nl) = t[start..].find('\n') {
                let end = start + nl;
                let line = &t[start..end];
                if want(line) {
                    return Some((end + 1, Ok(line.to_string())));
                }
                if stop.iter().any(|s| line.contains(s)) {
                    return Some((end + 1, Err(line.to_string())));
                }
                start = end + 1;
            }
            None
        })?;
        found.map_err(|line| self.fail(format!("waiting for {what}: this line came first instead:\n    {line}")))
    }

    /// Sends bytes to the console, a few at a time as a person types.
    pub fn type_text(&mut self, s: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("console input is closed")?;
        for chunk in s.as_bytes().chunks(8) {
            stdin.write_all(chunk)?;
            stdin.flush()?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Types a line and presses Enter (a carriage return, as a terminal sends).
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        self.type_text(line)?;
        self.type_text("\r")
    }

    /// Waits for the shell to answer: types `echo` of an arithmetic marker until its expansion
    /// comes back (the typed line itself only shows the unexpanded form). Call after the
    /// console shows the shell starting; input typed earlier could be lost.
    pub fn wait_shell(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.seq += 1;
            let n = self.seq;
            self.send_line(&format!("echo __READY$(({n}*1))__"))?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.expect(&format!("__READY{n}__\n"), left.min(Duration::from_secs(5))) {
                Ok(()) => {
                    self.shell_ready = true;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e.context("the shell never answered")),
                Err(_) => {}
            }
        }
    }

    /// Runs a shell command; returns its output (console text between two markers, `\r`
    /// removed, without the final newline) and its exit status.
    pub fn run_status(&mut self, cmd: &str, timeout: Duration) -> Result<(String, i32)> {
        if !self.shell_ready {
            self.wait_shell(Duration::from_secs(30))?;
        }
        self.seq += 1;
        let n = self.seq;
        let begin = format!("__B{n}__\n");
        let end = format!("__E{n}__");
        self.send_line(&format!("echo __B$(({n}*1))__; {cmd}; echo __E$(({n}*1))__$?"))?;
        // The kernel prints its lines on the same serial port, possibly in the middle of a
        // marker (`__B3[   12.3] loop0: ...\n5__`): markers are found across such lines.
        self.wait_for(&format!("'{}'", begin.trim_end()), Duration::from_secs(20), |t, cur| {
            find_across_kernel_lines(&t[cur..], &begin).map(|(_, e)| (cur + e, ()))
        })?;
        let what = format!("the end of command `{cmd}`");
        self.wait_for(&what, timeout, |t, cur| {
            let (start, stop) = find_across_kernel_lines(&t[cur..], &end)?;
            let (i, after) = (cur + start, cur + stop);
            // The status is the digits after the marker. A kernel message may follow them on
            // the same line (`__E7__0[   12.3] ...`), so the number ends at the first
            // non-digit, which must have arrived (else more digits may be on their way).
            let rest = &t[after..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits == rest.len() {
                return None;
            }
            let status: i32 = rest[..digits].parse().ok()?;
            let out = &t[cur..i];
            Some((after + digits, (out.strip_suffix('\n').unwrap_or(out).to_string(), status)))
        })
    }

    /// Runs a shell command, returns its output; fails if it exits non-zero.
    pub fn run(&mut self, cmd: &str) -> Result<String> {
        let (out, status) = self.run_status(cmd, Duration::from_secs(30))?;
        if status != 0 {
            return Err(self.fail(format!("`{cmd}` exited with status {status}; output:\n{out}")));
        }
        Ok(out)
    }

    /// Waits for QEMU to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait()? {
                // Let the readers drain the pipes.
                let (lock, cvar) = &*self.console;
                let c = lock.lock().unwrap();
                let _ = cvar.wait_timeout_while(c, Duration::from_secs(2), |c| c.closed < 2).unwrap();
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(self.fail(format!("QEMU did not exit within {:.0} s", timeout.as_secs_f64())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills QEMU (also done on drop).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stdin.take();
        self.kill();
    }
}

fn spawn_reader(mut r: impl Read + Send + 'static, console: Shared, log: Arc<Mutex<std::fs::File>>, echo: bool) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Bytes of an incomplete UTF-8 sequence carried to the next read.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let _ = log.lock().unwrap().write_all(&buf[..n]);
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            pending.extend_from_slice(&buf[..n]);
            let valid = match std::str::from_utf8(&pending) {
                Ok(_) => pending.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            let text: String = String::from_utf8_lossy(&pending[..valid]).chars().filter(|&c| c != '\r').collect();
            pending.drain(..valid);
            let (lock, cvar) = &*console;
            lock.lock().unwrap().text.push_str(&text);
            cvar.notify_all();
        }
        let (lock, cvar) = &*console;
        lock.lock().unwrap().closed += 1;
        cvar.notify_all();
    });
}

/// Runs QEMU in the foreground with the console on this terminal (`-serial mon:stdio`: Ctrl-A X
/// quits, Ctrl-A C switches to the monitor). Returns when QEMU exits.
pub fn interactive(boot: &Boot) -> Result<ExitStatus> {
    let mut cmd = boot.command()?;
    cmd.args(["-serial", "mon:stdio", "-display", "none"]);
    let status = cmd.status().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(status)
}

/// Where `marker` is in `hay` (start, end byte offsets), allowing whole kernel console lines
/// (`[  123.456789] text\n`) to be inserted between any two of its characters.
pub fn find_across_kernel_lines(hay: &str, marker: &str) -> Option<(usize, usize)> {
    let h = hay.as_bytes();
    let m = marker.as_bytes();
    let first = *m.first()?;
    let mut start = 0;
    while let Some(off) = h.get(start..)?.iter().position(|&b| b == first) {
        let s = start + off;
        let (mut p, mut j) = (s, 0);
        while j < m.len() {
            if h.get(p) == m.get(j) {
                p += 1;
                j += 1;
            } else if let Some(len) = kernel_line_len(&h[p.min(h.len())..]) {
                p += len;
            } else {
                break;
            }
        }
        if j == m.len() {
            return Some((s, p));
        }
        start = s + 1;
    }
    None
}

/// The length of a complete kernel console line at the start of `b` (`[ 12.345678] ...\n`).
fn kernel_line_len(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(b"[")?;
    let stamp = rest.iter().position(|&c| c == b']')?;
    let inside = &rest[..stamp];
    let ok = !inside.is_empty() && inside.contains(&b'.') && inside.iter().all(|c| c.is_ascii_digit() || *c == b' ' || *c == b'.');
    if !ok {
        return None;
    }
    let nl = rest.iter().position(|&c| c == b'\n')?;
    Some(1 + nl + 1)
}

#[cfg(test)]
mod marker_tests {
    use super::find_across_kernel_lines as find;

    #[test]
    fn markers_are_found_across_kernel_lines() {
        assert_eq!(find("x __B35__\ny", "__B35__\n"), Some((2, 10)));
        let t = "ab__B3[   12.345678] loop0: detected capacity change\n5__\nout";
        let (s, e) = find(t, "__B35__\n").expect("found across the kernel line");
        assert_eq!((&t[..s], &t[e..]), ("ab", "out"));
        let t = "__E7[    1.000000] a\n[    1.000001] b\n__0\n";
        assert_eq!(find(t, "__E7__").map(|(s, e)| &t[s..e]), Some("__E7[    1.000000] a\n[    1.000001] b\n__"));
    }

    #[test]
    fn other_text_in_between_is_not_skipped() {
        assert_eq!(find("__B3 5__\n", "__B35__\n"), None);
        assert_eq!(find("__B3[not a stamp]\n5__\n", "__B35__\n"), None);
        assert_eq!(find("__B3[   1.5] incomplete", "__B35__\n"), None, "a kernel line must be complete");
    }
}
