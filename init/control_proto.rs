//! The control socket's protocol (`/run/autoinit/control`, a root-only unix stream socket):
//! request parsing, response framing and the `status` table (pure, host-tested).
//!
//! A request is one line of UTF-8 text of at most [`REQUEST_BYTES`] including its `\n`:
//! `VERB [ARG...]`, words separated by spaces or tabs (runs of them count as one; a `\r`
//! before the `\n` is allowed for hand-typed requests). No other control byte is allowed.
//!
//! | request                                    | meaning                               |
//! |--------------------------------------------|---------------------------------------|
//! | `status [NAME]`                            | the status table, of all or one unit  |
//! | `start NAME`, `stop NAME`, `restart NAME`  | one unit                              |
//! | `reload`                                   | re-read the unit files                |
//! | `poweroff`, `reboot`, `halt`               | orderly shutdown                      |
//! | `upgrade PATH [--persist] [--settle SECS]` | reserved (parsed, may be unsupported) |
//! | `rollback`                                 | reserved                              |
//! | `exec NAME -- CMD...`                      | handled by the client (setns); PID 1 refuses it |
//!
//! A NAME is 1 to [`NAME_BYTES`] bytes of `[A-Za-z0-9:_.@-]`; a `.service` suffix is dropped.
//!
//! The response is a first line `ok` or `error: <one-line reason>`, then a body (the table
//! for `status`, empty otherwise), then the server closes the connection.

use crate::text::{Full, Write, write_i64, write_u64, write_u64_2};

/// Longest request, its `\n` included.
pub const REQUEST_BYTES: usize = 512;

/// Longest unit name (after dropping `.service`).
pub const NAME_BYTES: usize = 64;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ProtoError {
    /// Nothing but blanks (or nothing at all) before the `\n`.
    Empty,
    /// The line is longer than [`REQUEST_BYTES`].
    TooLong,
    NotUtf8,
    /// A control byte other than a tab (a NUL, an escape...) in the line.
    ControlByte,
    /// No `\n`: the request is incomplete.
    NoNewline,
    /// Bytes follow the request's `\n`.
    TrailingData,
    UnknownVerb,
    MissingArgument,
    ExtraArgument,
    /// An option or value the verb does not take (`upgrade --bogus`, `exec NAME` without `--`).
    BadArgument,
    BadName,
    /// A response whose first line is neither `ok` nor `error: ...`.
    BadResponse,
}

impl ProtoError {
    pub fn message(&self) -> &'static str {
        match self {
            ProtoError::Empty => "empty request",
            ProtoError::TooLong => "request too long (512 bytes at most)",
            ProtoError::NotUtf8 => "request is not UTF-8",
            ProtoError::ControlByte => "control character in request",
            ProtoError::NoNewline => "incomplete request (no newline)",
            ProtoError::TrailingData => "data after the request's newline",
            ProtoError::UnknownVerb => "unknown command",
            ProtoError::MissingArgument => "missing argument",
            ProtoError::ExtraArgument => "too many arguments",
            ProtoError::BadArgument => "bad option or value",
            ProtoError::BadName => "bad unit name (1-64 of A-Z a-z 0-9 : _ . @ -)",
            ProtoError::BadResponse => "malformed response",
        }
    }
}

/// The words after `--` of an `exec` request, separated by blanks.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Words<'a>(&'a str);

impl<'a> Words<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        words(self.0)
    }

    /// The words as sent, blanks between them included.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Request<'a> {
    Status(Option<&'a str>),
    Start(&'a str),
    Stop(&'a str),
    Restart(&'a str),
    Reload,
    Poweroff,
    Reboot,
    Halt,
    Upgrade { path: &'a str, persist: bool, settle_secs: Option<u32> },
    Rollback,
    Exec { name: &'a str, command: Words<'a> },
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_blank).filter(|w| !w.is_empty())
}

/// `s` after its first `n` words.
fn skip_words(s: &str, n: usize) -> &str {
    let mut rest = s;
    for _ in 0..n {
        let word = rest.trim_start_matches(is_blank);
        rest = word.find(is_blank).and_then(|end| word.get(end..)).unwrap_or("");
    }
    rest
}

/// A unit name without its `.service` suffix, if it is a valid one.
pub fn unit_name(word: &str) -> Result<&str, ProtoError> {
    let name = word.strip_suffix(".service").unwrap_or(word);
    let ok_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'@' | b'-');
    if name.is_empty() || name.len() > NAME_BYTES || !name.bytes().all(ok_byte) {
        return Err(ProtoError::BadName);
    }
    Ok(name)
}

/// The line's text without its `\n` (and `\r`), checked for length, encoding and bytes.
fn request_text(bytes: &[u8]) -> Result<&str, ProtoError> {
    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
        if bytes.len() >= REQUEST_BYTES {
            return Err(ProtoError::TooLong);
        }
        return Err(if bytes.is_empty() { ProtoError::Empty } else { ProtoError::NoNewline });
    };
    if nl >= REQUEST_BYTES {
        return Err(ProtoError::TooLong);
    }
    let (line, rest) = bytes.split_at(nl);
    if rest.len() > 1 {
        return Err(ProtoError::TrailingData);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = core::str::from_utf8(line).map_err(|_| ProtoError::NotUtf8)?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ProtoError::ControlByte);
    }
    Ok(text)
}

/// Parses one request line, `\n` included and nothing after it.
pub fn parse_request(bytes: &[u8]) -> Result<Request<'_>, ProtoError> {
    let text = request_text(bytes)?;
    let mut w = words(text);
    let verb = w.next().ok_or(ProtoError::Empty)?;
    let request = match verb {
        "status" => Request::Status(w.next().map(unit_name).transpose()?),
        "start" | "stop" | "restart" => {
            let name = unit_name(w.next().ok_or(ProtoError::MissingArgument)?)?;
            match verb {
                "start" => Request::Start(name),
                "stop" => Request::Stop(name),
                _ => Request::Restart(name),
            }
        }
        "reload" => Request::Reload,
        "poweroff" => Request::Poweroff,
        "reboot" => Request::Reboot,
        "halt" => Request::Halt,
        "rollback" => Request::Rollback,
        "upgrade" => return parse_upgrade(w),
        "exec" => {
            let name = unit_name(w.next().ok_or(ProtoError::MissingArgument)?)?;
            match w.next() {
                Some("--") => {}
                Some(_) => return Err(ProtoError::BadArgument),
                None => return Err(ProtoError::MissingArgument),
            }
            // The command is the rest of the line after `--`, blanks kept as sent.
            let command = skip_words(text, 3).trim_matches(is_blank);
            if command.is_empty() {
                return Err(ProtoError::MissingArgument);
            }
            return Ok(Request::Exec { name, command: Words(command) });
        }
        _ => return Err(ProtoError::UnknownVerb),
    };
    if w.next().is_some() {
        return Err(ProtoError::ExtraArgument);
    }
    Ok(request)
}

fn parse_upgrade<'a>(mut w: impl Iterator<Item = &'a str>) -> Result<Request<'a>, ProtoError> {
    let path = w.next().ok_or(ProtoError::MissingArgument)?;
    if !path.starts_with('/') {
        return Err(ProtoError::BadArgument);
    }
    let (mut persist, mut settle_secs) = (false, None);
    while let Some(opt) = w.next() {
        match opt {
            "--persist" if !persist => persist = true,
            "--settle" if settle_secs.is_none() => {
                let value = w.next().ok_or(ProtoError::MissingArgument)?;
                settle_secs =
                    Some(crate::text::parse_u32(value.as_bytes()).ok_or(ProtoError::BadArgument)?);
            }
            _ if opt.starts_with("--") => return Err(ProtoError::BadArgument),
            _ => return Err(ProtoError::ExtraArgument),
        }
    }
    Ok(Request::Upgrade { path, persist, settle_secs })
}

/// What [`RequestBuf::feed`] has so far.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Feed {
    /// A whole line of this many bytes (its `\n` included) is in the buffer; read no more.
    Complete(usize),
    NeedMore,
    /// [`REQUEST_BYTES`] bytes and no `\n`: answer [`ProtoError::TooLong`] and close.
    TooLong,
}

/// Collects a request from a stream socket that may deliver it in pieces.
pub struct RequestBuf {
    buf: [u8; REQUEST_BYTES],
    len: usize,
    complete: bool,
}

impl Default for RequestBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestBuf {
    pub const fn new() -> RequestBuf {
        RequestBuf { buf: [0; REQUEST_BYTES], len: 0, complete: false }
    }

    /// Appends bytes up to the first `\n`; whatever follows it is ignored.
    pub fn feed(&mut self, bytes: &[u8]) -> Feed {
        for &b in bytes {
            if self.complete {
                break;
            }
            let Some(slot) = self.buf.get_mut(self.len) else { break };
            *slot = b;
            self.len = self.len.saturating_add(1);
            self.complete = b == b'\n';
        }
        if self.complete {
            Feed::Complete(self.len)
        } else if self.len >= REQUEST_BYTES {
            Feed::TooLong
        } else {
            Feed::NeedMore
        }
    }

    /// The bytes collected so far.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Parses what was collected ([`ProtoError::NoNewline`] before a `\n` came).
    pub fn request(&self) -> Result<Request<'_>, ProtoError> {
        parse_request(self.bytes())
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.complete = false;
    }
}

/// The first line of a response.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Status<'a> {
    Ok,
    Error(&'a str),
}

/// `ok\n`.
pub fn write_ok(out: &mut impl Write) -> Result<(), Full> {
    out.write(b"ok\n")
}

/// `error: <reason>\n`, with any control byte of the reason turned into a space so that the
/// reason stays one line.
pub fn write_error(reason: &str, out: &mut impl Write) -> Result<(), Full> {
    out.write(b"error: ")?;
    for &b in reason.as_bytes() {
        out.write(if b < b' ' || b == 0x7f { b" " } else { core::slice::from_ref(&b) })?;
    }
    out.write(b"\n")
}

/// Splits a whole response into its status and its body.
pub fn split_response(bytes: &[u8]) -> Result<(Status<'_>, &[u8]), ProtoError> {
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or(ProtoError::NoNewline)?;
    let (first, rest) = bytes.split_at(nl);
    let body = rest.get(1..).unwrap_or(&[]);
    let first = core::str::from_utf8(first).map_err(|_| ProtoError::NotUtf8)?;
    let status = match first {
        "ok" => Status::Ok,
        _ => match first.strip_prefix("error:") {
            Some(reason) => Status::Error(reason.trim_start_matches(' ')),
            None => return Err(ProtoError::BadResponse),
        },
    };
    Ok((status, body))
}

/// How a service's last process ended.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum LastExit {
    None,
    Code(u8),
    Signal(u32),
}

/// One row of the status table.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct StatusRow<'a> {
    pub name: &'a str,
    pub state: &'a str,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub uptime_ms: Option<u64>,
    pub last_exit: LastExit,
}

/// The widths of the columns but the last; columns are two spaces apart. A longer value
/// pushes the rest of its row right, up to where the next column can start at its stop again.
const WIDTHS: [usize; 5] = [20, 9, 7, 8, 6];

/// Longest row; a row that would be longer is written without its end.
pub const ROW_BYTES: usize = 192;

/// The conventional names of signals 1 to 31, with the numbering that all of autoinit's
/// architectures (x86, arm, aarch64, riscv64) share.
const SIGNAL_NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGTERM`, or `None` for a number without a name (0, real-time signals).
pub fn signal_name(signal: u32) -> Option<&'static str> {
    let i = usize::try_from(signal.checked_sub(1)?).ok()?;
    SIGNAL_NAMES.get(i).copied()
}

/// `3s`, `2m05s`, `1h02m`, `3d04h`: the two largest units, rounded down.
pub fn write_uptime(ms: u64, out: &mut impl Write) -> Result<(), Full> {
    let s = ms / 1000;
    let (big, small, units): (u64, u64, [&[u8]; 2]) = if s < 60 {
        return write_u64(out, s).and_then(|()| out.write(b"s"));
    } else if s < 3600 {
        (s / 60, s % 60, [b"m", b"s"])
    } else if s < 86_400 {
        (s / 3600, s / 60 % 60, [b"h", b"m"])
    } else {
        (s / 86_400, s / 3600 % 24, [b"d", b"h"])
    };
    let [big_unit, small_unit] = units;
    write_u64(out, big)?;
    out.write(big_unit)?;
    write_u64_2(out, small)?;
    out.write(small_unit)
}

fn write_last_exit(last: LastExit, out: &mut impl Write) -> Result<(), Full> {
    match last {
        LastExit::None => out.write(b"-"),
        LastExit::Code(code) => {
            out.write(b"status ")?;
            write_u64(out, u64::from(code))
        }
        LastExit::Signal(n) => match signal_name(n) {
            Some(name) => out.write(name.as_bytes()),
            None => {
                out.write(b"signal ")?;
                write_u64(out, u64::from(n))
            }
        },
    }
}

/// Writes one cell's text into a row.
type Cell<'c> = &'c dyn Fn(&mut heapless::Vec<u8, ROW_BYTES>) -> Result<(), Full>;

/// Writes `cells` at their column stops, at least two spaces apart, and a `\n`.
fn write_cells(cells: [Cell<'_>; 6], out: &mut impl Write) -> Result<(), Full> {
    let mut row: heapless::Vec<u8, ROW_BYTES> = heapless::Vec::new();
    let mut stop = 0usize;
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            for _ in 0..stop.saturating_sub(row.len()).max(2) {
                row.write(b" ")?;
            }
        }
        cell(&mut row)?;
        stop = stop.saturating_add(WIDTHS.get(i).copied().unwrap_or(0)).saturating_add(2);
    }
    row.write(b"\n")?;
    out.write(&row)
}

/// The main pid of `name` in a `status` table, if the unit has one (`autoinit exec` joins
/// its namespaces).
pub fn main_pid_in_status(table: &[u8], name: &str) -> Option<i32> {
    let text = core::str::from_utf8(table).ok()?;
    let name = name.strip_suffix(".service").unwrap_or(name);
    text.lines().skip(1).find_map(|line| {
        let mut cells = line.split_ascii_whitespace();
        if cells.next()? != name {
            return None;
        }
        let pid = crate::text::parse_u64(cells.nth(1)?.as_bytes())?;
        i32::try_from(pid).ok().filter(|&p| p > 0)
    })
}

/// `NAME  STATE  PID  RESTARTS  UPTIME  LAST-EXIT`.
pub fn write_status_header(out: &mut impl Write) -> Result<(), Full> {
    write_cells(
        [
            &|o| o.write(b"NAME"),
            &|o| o.write(b"STATE"),
            &|o| o.write(b"PID"),
            &|o| o.write(b"RESTARTS"),
            &|o| o.write(b"UPTIME"),
            &|o| o.write(b"LAST-EXIT"),
        ],
        out,
    )
}

/// One row, aligned under [`write_status_header`]; all of it or nothing is written.
pub fn write_status_row(row: &StatusRow<'_>, out: &mut impl Write) -> Result<(), Full> {
    write_cells(
        [
            &|o| o.write(row.name.as_bytes()),
            &|o| o.write(row.state.as_bytes()),
            &|o| match row.pid {
                Some(pid) => write_i64(o, i64::from(pid)),
                None => o.write(b"-"),
            },
            &|o| write_u64(o, u64::from(row.restarts)),
            &|o| match row.uptime_ms {
                Some(ms) => write_uptime(ms, o),
                None => o.write(b"-"),
            },
            &|o| write_last_exit(row.last_exit, o),
        ],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Request<'_>, ProtoError> {
        parse_request(s.as_bytes())
    }

    #[test]
    fn parses_every_verb() {
        assert_eq!(parse("status\n"), Ok(Request::Status(None)));
        assert_eq!(parse("status sshd\n"), Ok(Request::Status(Some("sshd"))));
        assert_eq!(parse("start sshd.service\n"), Ok(Request::Start("sshd")));
        assert_eq!(parse("stop getty@ttyS0\n"), Ok(Request::Stop("getty@ttyS0")));
        assert_eq!(parse("restart a:b_c.d-e\n"), Ok(Request::Restart("a:b_c.d-e")));
        assert_eq!(parse("reload\n"), Ok(Request::Reload));
        assert_eq!(parse("poweroff\n"), Ok(Request::Poweroff));
        assert_eq!(parse("reboot\n"), Ok(Request::Reboot));
        assert_eq!(parse("halt\n"), Ok(Request::Halt));
        assert_eq!(parse("rollback\n"), Ok(Request::Rollback));
        assert_eq!(
            parse("upgrade /data/new.img\n"),
            Ok(Request::Upgrade { path: "/data/new.img", persist: false, settle_secs: None })
        );
        assert_eq!(
            parse("upgrade /x --settle 30 --persist\n"),
            Ok(Request::Upgrade { path: "/x", persist: true, settle_secs: Some(30) })
        );
        let Ok(Request::Exec { name, command }) = parse("exec db -- psql  -c 'select 1'\n") else {
            panic!("exec not parsed")
        };
        assert_eq!(name, "db");
        assert_eq!(command.as_str(), "psql  -c 'select 1'");
        assert_eq!(command.iter().collect::<Vec<_>>(), ["psql", "-c", "'select", "1'"]);
        // A name may contain "--"; only the word `--` separates the command.
        let Ok(Request::Exec { name, command }) = parse("\texec  a--b\t--  x -- y\n") else {
            panic!("exec not parsed")
        };
        assert_eq!((name, command.as_str()), ("a--b", "x -- y"));
    }

    #[test]
    fn blanks_and_crlf_are_tolerated() {
        assert_eq!(parse("  start\t\tsshd  \r\n"), Ok(Request::Start("sshd")));
        assert_eq!(parse("status\t\n"), Ok(Request::Status(None)));
    }

    #[test]
    fn every_error() {
        use ProtoError::*;
        assert_eq!(parse(""), Err(Empty));
        assert_eq!(parse("\n"), Err(Empty));
        assert_eq!(parse(" \t\r\n"), Err(Empty));
        assert_eq!(parse("status"), Err(NoNewline));
        assert_eq!(parse("status\nstatus\n"), Err(TrailingData));
        assert_eq!(parse_request(b"start \xff\n"), Err(NotUtf8));
        assert_eq!(parse_request(b"start a\0b\n"), Err(ControlByte));
        assert_eq!(parse_request(b"start \x1b[2J\n"), Err(ControlByte));
        assert_eq!(parse("frobnicate\n"), Err(UnknownVerb));
        assert_eq!(parse("STATUS\n"), Err(UnknownVerb));
        assert_eq!(parse("log sshd\n"), Err(UnknownVerb));
        assert_eq!(parse("start\n"), Err(MissingArgument));
        assert_eq!(parse("start a b\n"), Err(ExtraArgument));
        assert_eq!(parse("status a b\n"), Err(ExtraArgument));
        assert_eq!(parse("reload now\n"), Err(ExtraArgument));
        assert_eq!(parse("start a/b\n"), Err(BadName));
        assert_eq!(parse("start .service\n"), Err(BadName));
        assert_eq!(parse("status ../etc\n"), Err(BadName));
        assert_eq!(parse("start é\n"), Err(BadName));
        assert_eq!(parse("upgrade\n"), Err(MissingArgument));
        assert_eq!(parse("upgrade relative.img\n"), Err(BadArgument));
        assert_eq!(parse("upgrade /x --bogus\n"), Err(BadArgument));
        assert_eq!(parse("upgrade /x --persist --persist\n"), Err(BadArgument));
        assert_eq!(parse("upgrade /x --settle\n"), Err(MissingArgument));
        assert_eq!(parse("upgrade /x --settle -1\n"), Err(BadArgument));
        assert_eq!(parse("upgrade /x --settle 5 --settle 6\n"), Err(BadArgument));
        assert_eq!(parse("upgrade /x /y\n"), Err(ExtraArgument));
        assert_eq!(parse("exec\n"), Err(MissingArgument));
        assert_eq!(parse("exec db\n"), Err(MissingArgument));
        assert_eq!(parse("exec db --\n"), Err(MissingArgument));
        assert_eq!(parse("exec db -- \t\n"), Err(MissingArgument));
        assert_eq!(parse("exec db ls\n"), Err(BadArgument));
        assert_eq!(parse("exec a/b -- ls\n"), Err(BadName));
        for e in [
            Empty,
            TooLong,
            NotUtf8,
            ControlByte,
            NoNewline,
            TrailingData,
            UnknownVerb,
            MissingArgument,
            ExtraArgument,
            BadArgument,
            BadName,
            BadResponse,
        ] {
            assert!(!e.message().is_empty() && !e.message().contains('\n'));
        }
    }

    #[test]
    fn name_length_limits() {
        let n64 = "a".repeat(64);
        assert_eq!(parse(&format!("start {n64}\n")), Ok(Request::Start(&n64)));
        assert_eq!(parse(&format!("start {n64}.service\n")), Ok(Request::Start(&n64)));
        assert_eq!(parse(&format!("start {n64}a\n")), Err(ProtoError::BadName));
    }

    #[test]
    fn request_length_limits() {
        // 511 bytes and the newline: the longest request.
        let ok = format!("status{}\n", " ".repeat(REQUEST_BYTES - 7));
        assert_eq!(ok.len(), REQUEST_BYTES);
        assert_eq!(parse(&ok), Ok(Request::Status(None)));
        let long = format!("status{}\n", " ".repeat(REQUEST_BYTES - 6));
        assert_eq!(parse(&long), Err(ProtoError::TooLong));
        let no_nl = "s".repeat(REQUEST_BYTES);
        assert_eq!(parse(&no_nl), Err(ProtoError::TooLong));
        assert_eq!(parse(&no_nl[1..]), Err(ProtoError::NoNewline));
    }

    #[test]
    fn request_buf_collects_pieces() {
        let mut b = RequestBuf::new();
        assert_eq!(b.request(), Err(ProtoError::Empty));
        assert_eq!(b.feed(b"sta"), Feed::NeedMore);
        assert_eq!(b.request(), Err(ProtoError::NoNewline));
        assert_eq!(b.feed(b""), Feed::NeedMore);
        assert_eq!(b.feed(b"rt sshd\nstop x\n"), Feed::Complete(11));
        assert_eq!(b.bytes(), b"start sshd\n");
        assert_eq!(b.request(), Ok(Request::Start("sshd")));
        // Once complete, more bytes change nothing.
        assert_eq!(b.feed(b"garbage"), Feed::Complete(11));
        b.clear();
        assert_eq!(b.bytes(), b"");
        assert_eq!(b.feed(b"reload\n"), Feed::Complete(7));
        assert_eq!(b.request(), Ok(Request::Reload));
    }

    #[test]
    fn request_buf_limits() {
        let mut b = RequestBuf::default();
        assert_eq!(b.feed(&[b' '; REQUEST_BYTES - 1]), Feed::NeedMore);
        assert_eq!(b.feed(b"\n"), Feed::Complete(REQUEST_BYTES));
        assert_eq!(b.request(), Err(ProtoError::Empty));
        b.clear();
        assert_eq!(b.feed(&[b'x'; REQUEST_BYTES - 1]), Feed::NeedMore);
        assert_eq!(b.feed(b"yz\n"), Feed::TooLong);
        assert_eq!(b.feed(b"\n"), Feed::TooLong);
        assert_eq!(b.request(), Err(ProtoError::TooLong));
        b.clear();
        assert_eq!(b.feed(&[0xff; 2000]), Feed::TooLong);
    }

    #[test]
    fn responses() {
        let mut v: heapless::Vec<u8, 64> = heapless::Vec::new();
        write_ok(&mut v).unwrap();
        v.write(b"body\nmore\n").unwrap();
        assert_eq!(split_response(&v), Ok((Status::Ok, &b"body\nmore\n"[..])));
        v.clear();
        write_error("no such unit\n\"x\"\t", &mut v).unwrap();
        assert_eq!(&v[..], b"error: no such unit \"x\" \n");
        assert_eq!(split_response(&v), Ok((Status::Error("no such unit \"x\" "), &b""[..])));
        assert_eq!(split_response(b"ok\n"), Ok((Status::Ok, &b""[..])));
        assert_eq!(split_response(b"error:x\n"), Ok((Status::Error("x"), &b""[..])));
        assert_eq!(split_response(b"ok"), Err(ProtoError::NoNewline));
        assert_eq!(split_response(b""), Err(ProtoError::NoNewline));
        assert_eq!(split_response(b"okay\n"), Err(ProtoError::BadResponse));
        assert_eq!(split_response(b"\xff\n"), Err(ProtoError::NotUtf8));
        let mut tiny: heapless::Vec<u8, 8> = heapless::Vec::new();
        assert_eq!(write_error("a long reason", &mut tiny), Err(Full));
    }

    fn text(f: impl Fn(&mut heapless::Vec<u8, 512>) -> Result<(), Full>) -> String {
        let mut v = heapless::Vec::new();
        f(&mut v).unwrap();
        String::from_utf8(v.to_vec()).unwrap()
    }

    #[test]
    fn uptimes() {
        let up = |ms| text(|o| write_uptime(ms, o));
        assert_eq!(up(0), "0s");
        assert_eq!(up(3_999), "3s");
        assert_eq!(up(59_999), "59s");
        assert_eq!(up(60_000), "1m00s");
        assert_eq!(up(125_000), "2m05s");
        assert_eq!(up(3_599_999), "59m59s");
        assert_eq!(up(3_600_000), "1h00m");
        assert_eq!(up(3_720_000), "1h02m");
        assert_eq!(up(86_399_999), "23h59m");
        assert_eq!(up(86_400_000), "1d00h");
        assert_eq!(up((3 * 24 + 4) * 3_600_000 + 59_000), "3d04h");
        assert_eq!(up(u64::MAX), "213503982334d14h");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(11), Some("SIGSEGV"));
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(u32::MAX), None);
    }

    #[test]
    fn status_table() {
        let rows = [
            StatusRow {
                name: "sshd",
                state: "running",
                pid: Some(412),
                restarts: 0,
                uptime_ms: Some(125_000),
                last_exit: LastExit::None,
            },
            StatusRow {
                name: "crasher",
                state: "failed",
                pid: None,
                restarts: 5,
                uptime_ms: None,
                last_exit: LastExit::Code(3),
            },
            StatusRow {
                name: "a-very-long-unit-name-indeed",
                state: "backoff",
                pid: None,
                restarts: 12,
                uptime_ms: None,
                last_exit: LastExit::Signal(9),
            },
            StatusRow {
                name: "rt",
                state: "stopping",
                pid: Some(-1),
                restarts: u32::MAX,
                uptime_ms: Some(0),
                last_exit: LastExit::Signal(40),
            },
        ];
        let table = text(|o| {
            write_status_header(o)?;
            rows.iter().try_for_each(|r| write_status_row(r, o))
        });
        // A long value shifts its row until a later column can start at its stop again.
        let expected = "\
NAME                  STATE      PID      RESTARTS  UPTIME  LAST-EXIT
sshd                  running    412      0         2m05s   -
crasher               failed     -        5         -       status 3
a-very-long-unit-name-indeed  backoff  -  12        -       SIGKILL
rt                    stopping   -1       4294967295  0s    signal 40
";
        assert_eq!(table, expected);
    }

    #[test]
    fn main_pid_from_the_status_table() {
        let table = b"NAME  STATE  PID  RESTARTS  UPTIME  LAST-EXIT\nweb  running  412  0  2m05s  -\nweb2  failed  -  5  -  status 3\n";
        assert_eq!(main_pid_in_status(table, "web"), Some(412));
        assert_eq!(main_pid_in_status(table, "web.service"), Some(412));
        assert_eq!(main_pid_in_status(table, "web2"), None);
        assert_eq!(main_pid_in_status(table, "we"), None);
        assert_eq!(main_pid_in_status(b"NAME STATE PID\n", "web"), None);
    }

    #[test]
    fn status_rows_are_all_or_nothing() {
        let row = StatusRow {
            name: "sshd",
            state: "running",
            pid: Some(1),
            restarts: 0,
            uptime_ms: None,
            last_exit: LastExit::None,
        };
        let mut small: heapless::Vec<u8, 80> = heapless::Vec::new();
        write_status_header(&mut small).unwrap();
        let header_len = small.len();
        assert_eq!(write_status_row(&row, &mut small), Err(Full));
        assert_eq!(small.len(), header_len);
        // A row longer than ROW_BYTES is refused whole, never cut.
        let long_state = "x".repeat(ROW_BYTES);
        let mut big: heapless::Vec<u8, 1024> = heapless::Vec::new();
        let row = StatusRow { state: &long_state, ..row };
        assert_eq!(write_status_row(&row, &mut big), Err(Full));
        assert!(big.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"status rt-p\n\t\r\x00\xff\xc3\xa9-/ .service1";
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i) % alphabet.len()])
                .collect();
            let _ = parse_request(&bytes);
            let _ = split_response(&bytes);
            let mut b = RequestBuf::new();
            let _ = b.feed(&bytes);
            let _ = b.request();
        }
    }
}
