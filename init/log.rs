//! Logging: one line per event, to /dev/kmsg and the console, never allocating.
//!
//! A line goes to /dev/kmsg with its level (`<4>autoinit: warning: ...`). The kernel copies a
//! kmsg record to the console itself when its level is below `console_loglevel`
//! (/proc/sys/kernel/printk); only otherwise do we write the line to the console directly,
//! so that each line is on the console exactly once, whatever `quiet` or `loglevel=` say.

use crate::cmdline::LogLevel;
use core::ffi::CStr;
use syscall::fs::{self, OFlags};
use syscall::process::Pid;
use syscall::signal::Signal;
use syscall::{BorrowedFd, Errno, OwnedFd};

/// Longest line; longer ones are cut and end in "...".
pub const LINE_BYTES: usize = 256;

/// Severity, with the kernel's syslog numbers.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Error = 3,
    Warn = 4,
    Info = 6,
    Debug = 7,
}

/// A line being built, of at most `LINE_BYTES`.
pub struct Line {
    buf: [u8; LINE_BYTES],
    len: usize,
    cut: bool,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; LINE_BYTES], len: 0, cut: false }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                None => {
                    self.cut = true;
                    return;
                }
            }
        }
    }

    /// As [`push`](Self::push), with every control byte shown as '?': text from outside
    /// (a file name, a command-line value) cannot end the line or drive the terminal.
    pub fn push_printable(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(&[if b.is_ascii_control() { b'?' } else { b }]);
            if self.cut {
                return;
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Ends the line with '\n', overwriting the last byte of a full line: a kmsg record
    /// without its newline stays open for a continuation and is not shown until the next one.
    pub fn end(&mut self) {
        if self.len < LINE_BYTES {
            self.push(b"\n");
        } else if let Some(last) = self.buf.get_mut(LINE_BYTES - 1) {
            *last = b'\n';
        }
    }

    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// `core::fmt` is used only by the panic handler: it costs about 2 KiB.
impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Something that can be written into a [`Line`].
pub trait Piece {
    fn put(&self, line: &mut Line);
}

impl<T: Piece + ?Sized> Piece for &T {
    fn put(&self, l: &mut Line) {
        (**self).put(l)
    }
}

impl Piece for str {
    fn put(&self, l: &mut Line) {
        l.push(self.as_bytes())
    }
}

impl Piece for [u8] {
    fn put(&self, l: &mut Line) {
        l.push(self)
    }
}

impl Piece for CStr {
    fn put(&self, l: &mut Line) {
        l.push(self.to_bytes())
    }
}

impl Piece for u64 {
    fn put(&self, l: &mut Line) {
        let mut digits = [0u8; 20];
        let mut n = *self;
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        l.push(digits.get(i..).unwrap_or(&[]));
    }
}

impl Piece for u32 {
    fn put(&self, l: &mut Line) {
        (*self as u64).put(l)
    }
}

impl Piece for usize {
    fn put(&self, l: &mut Line) {
        (*self as u64).put(l)
    }
}

impl Piece for i32 {
    fn put(&self, l: &mut Line) {
        if *self < 0 {
            l.push(b"-");
        }
        (self.unsigned_abs() as u64).put(l)
    }
}

impl Piece for Errno {
    fn put(&self, l: &mut Line) {
        match self.name() {
            Some(name) => l.push(name.as_bytes()),
            None => {
                l.push(b"errno ");
                (self.raw() as u64).put(l)
            }
        }
    }
}

impl Piece for Pid {
    fn put(&self, l: &mut Line) {
        self.raw().put(l)
    }
}

impl Piece for Signal {
    fn put(&self, l: &mut Line) {
        match self.name() {
            Some(name) => {
                l.push(b"SIG");
                l.push(name.as_bytes())
            }
            None => {
                l.push(b"signal ");
                self.0.put(l)
            }
        }
    }
}

/// Builds a [`Line`] from pieces: `line!("mount ", path, ": ", errno)`.
#[macro_export]
macro_rules! line {
    ($($piece:expr),* $(,)?) => {{
        let mut l = $crate::log::Line::new();
        $( $crate::log::Piece::put(&$piece, &mut l); )*
        l
    }};
}

/// `log!(log, Level::Info, "piece", value, ...)`.
#[macro_export]
macro_rules! log {
    ($log:expr, $level:expr, $($piece:expr),* $(,)?) => {
        $log.emit($level, &$crate::line!($($piece),*))
    };
}

/// Where log lines go.
pub struct Log {
    kmsg: Option<OwnedFd>,
    console: BorrowedFd<'static>,
    /// The kernel's console_loglevel: kmsg records below it reach the console by themselves.
    console_loglevel: u8,
    verbosity: LogLevel,
}

impl Log {
    /// Console only (fd 2) until [`Log::open_kmsg`] succeeds.
    pub const fn console_only() -> Log {
        Log { kmsg: None, console: BorrowedFd::STDERR, console_loglevel: 0, verbosity: LogLevel::Info }
    }

    /// Opens /dev/kmsg (needs /dev) and reads console_loglevel (needs /proc).
    pub fn open_kmsg(&mut self) -> Result<(), Errno> {
        self.kmsg = Some(fs::open(c"/dev/kmsg", OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY, 0)?);
        self.console_loglevel = read_console_loglevel().unwrap_or(0);
        Ok(())
    }

    /// The fd of /dev/kmsg, for a process that closes every other inherited fd.
    pub fn kmsg_raw_fd(&self) -> Option<i32> {
        self.kmsg.as_ref().map(|fd| fd.raw())
    }

    pub fn set_verbosity(&mut self, v: LogLevel) {
        self.verbosity = v;
    }

    pub fn enabled(&self, level: Level) -> bool {
        match level {
            Level::Error | Level::Warn => true,
            Level::Info => self.verbosity >= LogLevel::Info,
            Level::Debug => self.verbosity >= LogLevel::Debug,
        }
    }

    /// Writes one line; errors are dropped (there is nowhere left to report them).
    pub fn emit(&self, level: Level, msg: &Line) {
        if !self.enabled(level) {
            return;
        }
        let mut text = Line::new();
        text.push(b"autoinit: ");
        match level {
            Level::Warn => text.push(b"warning: "),
            Level::Error | Level::Info | Level::Debug => {}
        }
        text.push_printable(msg.as_bytes());
        if msg.is_cut() || text.is_cut() {
            text.push(b"...");
        }
        let echoed_by_kernel = match &self.kmsg {
            Some(kmsg) => {
                let mut rec = Line::new();
                rec.push(b"<");
                (level as u32).put(&mut rec);
                rec.push(b">");
                rec.push(text.as_bytes());
                rec.end();
                let ok = fs::write(kmsg, rec.as_bytes()).is_ok();
                ok && (level as u8) < self.console_loglevel
            }
            None => false,
        };
        if !echoed_by_kernel {
            text.end();
            let _ = fs::write_all(self.console, text.as_bytes());
        }
    }
}

impl Log {
    /// A service's output line: `<6>name[pid]: text` to /dev/kmsg (the console if there is
    /// no kmsg). The kernel shows it on the console by its level, like any info record.
    pub fn service_line(&self, name: &str, pid: i32, text: &[u8]) {
        let mut rec = Line::new();
        match &self.kmsg {
            Some(_) => rec.push(b"<6>"),
            None => {}
        }
        rec.push(name.as_bytes());
        rec.push(b"[");
        pid.put(&mut rec);
        rec.push(b"]: ");
        rec.push(text);
        rec.end();
        match &self.kmsg {
            Some(kmsg) => {
                let _ = fs::write(kmsg, rec.as_bytes());
            }
            None => {
                let _ = fs::write_all(self.console, rec.as_bytes());
            }
        }
    }
}

/// The first field of /proc/sys/kernel/printk.
fn read_console_loglevel() -> Option<u8> {
    let fd = fs::open(c"/proc/sys/kernel/printk", OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 16];
    let n = fs::read(&fd, &mut buf).ok()?;
    let text = core::str::from_utf8(buf.get(..n)?).ok()?;
    let first = text.split_ascii_whitespace().next()?;
    crate::cmdline::number(first, 15).map(|n| n as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_format_without_fmt() {
        let l = line!("pid ", Pid(42), " got ", Signal::TERM, ", ", Errno::ENOENT, " ", -7i32, " ", 0u64, " ", u64::MAX, " ", Errno(4000));
        assert_eq!(core::str::from_utf8(l.as_bytes()).unwrap(), "pid 42 got SIGTERM, ENOENT -7 0 18446744073709551615 errno 4000");
    }

    #[test]
    fn long_lines_are_cut_not_overflowed() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.push(b"0123456789");
        }
        assert_eq!(l.as_bytes().len(), LINE_BYTES);
        assert!(l.is_cut());
        l.end();
        assert_eq!(l.as_bytes().len(), LINE_BYTES);
        assert_eq!(l.as_bytes().last(), Some(&b'\n'));
    }

    #[test]
    fn outside_text_cannot_break_the_line() {
        let mut l = Line::new();
        l.push_printable(b"image=a\x1b[2J\nb\x7f\tc/\xc3\xa9");
        assert_eq!(l.as_bytes(), b"image=a?[2J?b??c/\xc3\xa9", "UTF-8 is kept, control bytes are not");
    }

    #[test]
    fn lines_end_in_exactly_one_newline() {
        let mut l = line!("short");
        l.end();
        assert_eq!(l.as_bytes(), b"short\n");
    }
}
