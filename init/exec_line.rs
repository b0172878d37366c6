//! Command lines of ExecStart= and friends, split as systemd does (systemd.service(5),
//! "Command lines") into NUL-terminated arguments ready for execve (pure, host-tested).
//!
//! The order is systemd's: a word is unquoted and unescaped first, then its `%` specifiers
//! and `$` variables are expanded. So quotes do not stop expansion (`'$HOME'` expands; write
//! `$$` for a dollar), and a variable's value is never re-split except for a word that is
//! exactly `$NAME`.

use core::ffi::CStr;
use heapless::Vec;

use crate::unit;

/// Arguments per command, after `$VAR` splitting.
pub const MAX_ARGS: usize = 64;
/// Size of the buffer the runtime should give [`split`]: all arguments with their NULs.
pub const ARG_BYTES: usize = 4096;
/// Longest variable name in `$NAME` / `${NAME}`.
pub const NAME_BYTES: usize = 128;
/// Where a program named without a `/` is looked for, in order (systemd's fixed path).
pub const SEARCH_PATH: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    UnterminatedQuote,
    /// An unknown `\` escape, or a `\` at the very end.
    BadEscape,
    /// A NUL byte, written or escaped (`\x00`), which cannot be passed to execve.
    NulByte,
    TooManyArgs,
    /// The arguments do not fit the buffer, or a variable name is over NAME_BYTES.
    TooLong,
    EmptyCommand,
    /// The program is a relative path with a `/`: it must be absolute or a bare name.
    RelativePath,
    /// The `@` prefix needs a second word, the program's argv[0].
    MissingArgv0,
}

impl SplitError {
    pub fn message(self) -> &'static str {
        match self {
            SplitError::UnterminatedQuote => "unterminated quote in the command line",
            SplitError::BadEscape => "unknown backslash escape in the command line",
            SplitError::NulByte => "NUL byte in the command line",
            SplitError::TooManyArgs => "too many arguments (MAX_ARGS = 64)",
            SplitError::TooLong => "command line too long (ARG_BYTES = 4096)",
            SplitError::EmptyCommand => "empty command",
            SplitError::RelativePath => "the program must be an absolute path or a bare name",
            SplitError::MissingArgv0 => "the '@' prefix needs the program and its argv[0]",
        }
    }
}

/// How to find the program, argv[0] of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// argv[0] is an absolute path.
    Absolute,
    /// argv[0] is a bare name: try each [`SEARCH_PATH`] directory ([`search_candidate`]).
    Search,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub(crate) type Sink<'s> = &'s mut dyn FnMut(u8) -> Result<(), SplitError>;

/// Words of a command line as systemd's extract_first_word(UNQUOTE | CUNESCAPE) finds them.
#[derive(Clone, Copy)]
pub(crate) struct Words<'r> {
    rest: &'r [u8],
}

impl<'r> Words<'r> {
    pub(crate) fn new(raw: &'r str) -> Self {
        Words { rest: raw.as_bytes() }
    }

    /// Feeds the next word's bytes to `sink`; None when there are no more words.
    pub(crate) fn next_word(&mut self, sink: Sink<'_>) -> Option<Result<(), SplitError>> {
        let start = self.rest.iter().position(|&b| !is_ws(b))?;
        self.rest = self.rest.get(start..).unwrap_or(&[]);
        Some(self.word(sink))
    }

    fn word(&mut self, sink: Sink<'_>) -> Result<(), SplitError> {
        let mut quote: Option<u8> = None;
        loop {
            let Some((&b, tail)) = self.rest.split_first() else {
                return if quote.is_some() { Err(SplitError::UnterminatedQuote) } else { Ok(()) };
            };
            self.rest = tail;
            match (quote, b) {
                (_, 0) => return Err(SplitError::NulByte),
                (None, b) if is_ws(b) => return Ok(()),
                (None, b'\'' | b'"') => quote = Some(b),
                (Some(q), b) if b == q => quote = None,
                (_, b'\\') => self.escape(sink)?,
                (_, b) => sink(b)?,
            }
        }
    }

    /// After a backslash: C escapes as systemd's cunescape, plus `\ ` and `\;`.
    fn escape(&mut self, sink: Sink<'_>) -> Result<(), SplitError> {
        let (&c, tail) = self.rest.split_first().ok_or(SplitError::BadEscape)?;
        self.rest = tail;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b's' | b' ' => Some(b' '),
            b'\\' | b'"' | b'\'' | b';' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            return sink(b);
        }
        let (digits, radix) = match c {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => (2, 8),
            _ => return Err(SplitError::BadEscape),
        };
        let mut value: u32 = if radix == 8 { u32::from(c - b'0') } else { 0 };
        for _ in 0..digits {
            let (&d, tail) = self.rest.split_first().ok_or(SplitError::BadEscape)?;
            let d = char::from(d).to_digit(radix).ok_or(SplitError::BadEscape)?;
            value = value * radix + d;
            self.rest = tail;
        }
        if value == 0 {
            return Err(SplitError::NulByte);
        }
        if matches!(c, b'x' | b'0'..=b'7') {
            // A raw byte, as in C.
            return sink(u8::try_from(value).map_err(|_| SplitError::BadEscape)?);
        }
        let ch = char::from_u32(value).ok_or(SplitError::BadEscape)?;
        let mut utf8 = [0u8; 4];
        for &b in ch.encode_utf8(&mut utf8).as_bytes() {
            sink(b)?;
        }
        Ok(())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_env_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_') && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// Checks a command line when the unit is loaded: quotes, escapes, and a program that is
/// absolute or a bare name (unless it comes from a variable or specifier).
pub fn check(raw: &str, argv0_override: bool) -> Result<(), SplitError> {
    let mut words = Words { rest: raw.as_bytes() };
    let mut count = 0usize;
    let (mut first_len, mut slash_first, mut has_slash, mut dynamic) = (0usize, false, false, false);
    loop {
        let first = count == 0;
        let mut sink = |b: u8| {
            if first {
                slash_first |= first_len == 0 && b == b'/';
                has_slash |= b == b'/';
                dynamic |= b == b'$' || b == b'%';
                first_len += 1;
            }
            Ok(())
        };
        match words.next_word(&mut sink) {
            None => break,
            Some(r) => r?,
        }
        count += 1;
    }
    if count == 0 || (first_len == 0 && !dynamic) {
        return Err(SplitError::EmptyCommand);
    }
    if !dynamic && has_slash && !slash_first {
        return Err(SplitError::RelativePath);
    }
    if argv0_override && count < 2 {
        return Err(SplitError::MissingArgv0);
    }
    Ok(())
}

/// Writes `b` at `*w` if that stays below `limit` (the next byte not yet read).
fn put(buf: &mut [u8], w: &mut usize, limit: usize, b: u8) -> Result<(), SplitError> {
    if *w >= limit {
        return Err(SplitError::TooLong);
    }
    *buf.get_mut(*w).ok_or(SplitError::TooLong)? = b;
    *w += 1;
    Ok(())
}

/// Copies a variable name out of the buffer, so that the buffer can be written while the
/// name is looked up.
fn name_copy(name: &[u8], out: &mut [u8; NAME_BYTES]) -> Result<usize, SplitError> {
    let slot = out.get_mut(..name.len()).ok_or(SplitError::TooLong)?;
    slot.copy_from_slice(name);
    Ok(name.len())
}

type Env<'f, 'e> = Option<&'f dyn Fn(&str) -> Option<&'e str>>;

fn lookup<'e>(env: &dyn Fn(&str) -> Option<&'e str>, name: &[u8]) -> Option<&'e str> {
    core::str::from_utf8(name).ok().and_then(env)
}

/// Expands the unquoted word at `buf[tail..]` into `buf[*w..]`, recording each resulting
/// argument (start, length without NUL) in `spans`.
fn expand(
    buf: &mut [u8],
    tail: usize,
    w: &mut usize,
    unit_name: &str,
    env: Env<'_, '_>,
    spans: &mut Vec<(usize, usize), MAX_ARGS>,
) -> Result<(), SplitError> {
    let end = buf.len();
    let mut name = [0u8; NAME_BYTES];
    let word = buf.get(tail..).unwrap_or(&[]);
    if let Some(env) = env
        && let Some(var) = word.strip_prefix(b"$")
        && valid_env_name(var)
    {
        // `$NAME` as a whole word: zero or more arguments, split on whitespace.
        let n = name_copy(var, &mut name)?;
        let value = lookup(env, name.get(..n).unwrap_or(&[])).unwrap_or("");
        for piece in value.as_bytes().split(|&b| is_ws(b)).filter(|p| !p.is_empty()) {
            let start = *w;
            for &b in piece {
                put(buf, w, end, b)?;
            }
            put(buf, w, end, 0)?;
            spans.push((start, piece.len())).map_err(|_| SplitError::TooManyArgs)?;
        }
        return Ok(());
    }
    let start = *w;
    let mut r = tail;
    while let Some(&b) = buf.get(r) {
        r += 1;
        match b {
            b'%' => match buf.get(r).copied() {
                Some(c) => {
                    r += 1;
                    match unit::specifier(c, unit_name) {
                        Some(v) => {
                            for x in v.bytes() {
                                put(buf, w, r, x)?;
                            }
                        }
                        None => {
                            put(buf, w, r, b'%')?;
                            put(buf, w, r, c)?;
                        }
                    }
                }
                None => put(buf, w, r, b'%')?,
            },
            b'$' if env.is_some() => match buf.get(r).copied() {
                Some(b'$') => {
                    r += 1;
                    put(buf, w, r, b'$')?;
                }
                Some(b'{') => {
                    let inner = buf.get(r + 1..).unwrap_or(&[]);
                    let var = inner.iter().position(|&c| c == b'}').and_then(|p| inner.get(..p));
                    match (var, env) {
                        (Some(var), Some(env)) if valid_env_name(var) => {
                            let n = name_copy(var, &mut name)?;
                            r += n + 2;
                            if let Some(value) = lookup(env, name.get(..n).unwrap_or(&[])) {
                                for &x in value.as_bytes() {
                                    put(buf, w, r, x)?;
                                }
                            }
                        }
                        _ => put(buf, w, r, b'$')?,
                    }
                }
                _ => put(buf, w, r, b'$')?,
            },
            b => put(buf, w, r, b)?,
        }
    }
    put(buf, w, end, 0)?;
    spans.push((start, w.saturating_sub(start).saturating_sub(1))).map_err(|_| SplitError::TooManyArgs)
}

/// Splits `raw` (an Exec*= command after its prefixes) into `argv`, expanding specifiers for
/// `unit_name` and variables through `env` (None for the `:` prefix: `$` stays literal). The
/// arguments are written NUL-terminated into `buf` (give it [`ARG_BYTES`]).
pub fn split<'b, 'e>(
    raw: &str,
    unit_name: &str,
    env: Env<'_, 'e>,
    buf: &'b mut [u8],
    argv: &mut Vec<&'b CStr, MAX_ARGS>,
) -> Result<Program, SplitError> {
    argv.clear();
    let mut spans: Vec<(usize, usize), MAX_ARGS> = Vec::new();
    let mut words = Words { rest: raw.as_bytes() };
    let mut w = 0usize;
    loop {
        // Measure the unquoted word, put it at the end of the buffer, then expand it from
        // there to the front: no second buffer.
        let mut probe = words;
        let mut len = 0usize;
        match probe.next_word(&mut |_| {
            len += 1;
            Ok(())
        }) {
            None => break,
            Some(r) => r?,
        }
        let tail = buf.len().checked_sub(len).filter(|&t| t >= w).ok_or(SplitError::TooLong)?;
        let mut t = tail;
        let mut sink = |b: u8| {
            *buf.get_mut(t).ok_or(SplitError::TooLong)? = b;
            t += 1;
            Ok(())
        };
        if let Some(r) = words.next_word(&mut sink) {
            r?;
        }
        expand(buf, tail, &mut w, unit_name, env, &mut spans)?;
    }
    let buf: &'b [u8] = buf;
    for &(start, len) in &spans {
        let bytes = buf.get(start..=start + len).ok_or(SplitError::TooLong)?;
        let arg = CStr::from_bytes_with_nul(bytes).map_err(|_| SplitError::NulByte)?;
        argv.push(arg).map_err(|_| SplitError::TooManyArgs)?;
    }
    let program = argv.first().map(|a| a.to_bytes()).ok_or(SplitError::EmptyCommand)?;
    match program {
        [] => Err(SplitError::EmptyCommand),
        [b'/', ..] => Ok(Program::Absolute),
        p if p.contains(&b'/') => Err(SplitError::RelativePath),
        _ => Ok(Program::Search),
    }
}

/// `dir/program` NUL-terminated in `out`, for [`Program::Search`]; None if it does not fit.
pub fn search_candidate<'o>(dir: &str, program: &CStr, out: &'o mut [u8]) -> Option<&'o CStr> {
    let mut len = 0usize;
    for &b in dir.as_bytes().iter().chain(b"/").chain(program.to_bytes_with_nul()) {
        *out.get_mut(len)? = b;
        len += 1;
    }
    CStr::from_bytes_with_nul(out.get(..len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<&'static str> {
        match name {
            "SSHD_OPTS" => Some("-o  LogLevel=DEBUG\t-4"),
            "EMPTY" => Some(""),
            "ONE" => Some("one"),
            "SPACEY" => Some(" a b "),
            _ => None,
        }
    }

    fn run(raw: &str, unit: &str, with_env: bool) -> Result<(Program, std::vec::Vec<std::string::String>), SplitError> {
        let mut buf = [0u8; ARG_BYTES];
        let mut argv = Vec::new();
        let e: &dyn Fn(&str) -> Option<&'static str> = &env;
        let program = split(raw, unit, if with_env { Some(e) } else { None }, &mut buf, &mut argv)?;
        Ok((program, argv.iter().map(|a| a.to_str().unwrap().to_string()).collect()))
    }

    fn args(raw: &str) -> std::vec::Vec<std::string::String> {
        run(raw, "x.service", true).unwrap().1
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(args("/bin/echo  a\tb "), ["/bin/echo", "a", "b"]);
        assert_eq!(args("/bin/sh -c 'echo \"hi there\"'"), ["/bin/sh", "-c", "echo \"hi there\""]);
        assert_eq!(args("/bin/x --opt=\"a b\"c 'd'\"e\""), ["/bin/x", "--opt=a bc", "de"]);
        assert_eq!(args("/bin/x \"\" ''"), ["/bin/x", "", ""]);
        assert_eq!(args(r"/bin/x a\ b \n\t\\ \x41\102 \u00e9 '\'' \; \s"), ["/bin/x", "a b", "\n\t\\", "AB", "é", "'", ";", " "]);
        // The getty unit: \\u in quotes reaches agetty as \u.
        assert_eq!(
            args(r"/sbin/agetty -o '-p -- \\u' --keep-baud 115200,57600 - $TERM"),
            ["/sbin/agetty", "-o", r"-p -- \u", "--keep-baud", "115200,57600", "-"]
        );
    }

    #[test]
    fn variables() {
        assert_eq!(args("/usr/sbin/sshd -D $SSHD_OPTS"), ["/usr/sbin/sshd", "-D", "-o", "LogLevel=DEBUG", "-4"]);
        assert_eq!(args("/bin/x $UNSET $EMPTY end"), ["/bin/x", "end"]);
        assert_eq!(args("/bin/x ${SPACEY} pre${ONE}post ${UNSET}"), ["/bin/x", " a b ", "preonepost", ""]);
        // Quotes do not stop expansion, as in systemd; $$ is a dollar.
        assert_eq!(args("/bin/x '$ONE' \"$SPACEY\" $$ONE a$$b"), ["/bin/x", "one", "a", "b", "$ONE", "a$b"]);
        // Only ${} expands inside a word; malformed forms stay literal.
        assert_eq!(args("/bin/x a$ONE ${ONE ${1X} $ ${}"), ["/bin/x", "a$ONE", "${ONE", "${1X}", "$", "${}"]);
        // ':' prefix: no expansion at all.
        assert_eq!(run("/bin/x $ONE ${ONE} $$ %n", "y.service", false).unwrap().1, ["/bin/x", "$ONE", "${ONE}", "$$", "y.service"]);
        let long = format!("/bin/x ${{{}}}", "A".repeat(NAME_BYTES + 1));
        assert_eq!(run(&long, "x.service", true), Err(SplitError::TooLong));
    }

    #[test]
    fn specifiers() {
        let (_, a) = run("/sbin/agetty %I %n %N %p %% %H %", "serial-getty@ttyS1.service", true).unwrap();
        assert_eq!(a, ["/sbin/agetty", "ttyS1", "serial-getty@ttyS1.service", "serial-getty@ttyS1", "serial-getty", "%", "%H", "%"]);
        assert_eq!(run("/bin/%p", "tool.service", true).unwrap().1, ["/bin/tool"]);
    }

    #[test]
    fn program_lookup() {
        assert_eq!(run("/bin/true", "x.service", true).unwrap().0, Program::Absolute);
        assert_eq!(run("true x", "x.service", true).unwrap().0, Program::Search);
        assert_eq!(run("bin/true", "x.service", true), Err(SplitError::RelativePath));
        let mut out = [0u8; 32];
        assert_eq!(search_candidate(SEARCH_PATH[2], c"true", &mut out).unwrap(), c"/usr/sbin/true");
        assert!(search_candidate("/a/very/long/directory/name", c"program", &mut out).is_none());
    }

    #[test]
    fn errors() {
        let e = |raw: &str| run(raw, "x.service", true).unwrap_err();
        assert_eq!(e("/bin/x 'abc"), SplitError::UnterminatedQuote);
        assert_eq!(e("/bin/x \"abc'"), SplitError::UnterminatedQuote);
        assert_eq!(e(r"/bin/x \q"), SplitError::BadEscape);
        assert_eq!(e(r"/bin/x \xZZ"), SplitError::BadEscape);
        assert_eq!(e(r"/bin/x \x4"), SplitError::BadEscape);
        assert_eq!(e(r"/bin/x \uD800"), SplitError::BadEscape);
        assert_eq!(e("/bin/x \\"), SplitError::BadEscape);
        assert_eq!(e(r"/bin/x \x00"), SplitError::NulByte);
        assert_eq!(e(r"/bin/x \000"), SplitError::NulByte);
        assert_eq!(e("/bin/x a\0b"), SplitError::NulByte);
        assert_eq!(e(""), SplitError::EmptyCommand);
        assert_eq!(e("  \t "), SplitError::EmptyCommand);
        assert_eq!(e("$UNSET"), SplitError::EmptyCommand);
        assert_eq!(e("'' x"), SplitError::EmptyCommand);
        let many = format!("/bin/x{}", " a".repeat(MAX_ARGS));
        assert_eq!(e(&many), SplitError::TooManyArgs);
        let fits = format!("/bin/x{}", " a".repeat(MAX_ARGS - 1));
        assert_eq!(args(&fits).len(), MAX_ARGS);
        // 4096 bytes exactly: "/bin/x\0" (7) + 4089 bytes of argument incl. its NUL.
        let exact = format!("/bin/x {}", "a".repeat(ARG_BYTES - 7 - 1));
        assert_eq!(args(&exact)[1].len(), ARG_BYTES - 8);
        let over = format!("/bin/x {}", "a".repeat(ARG_BYTES - 7));
        assert_eq!(e(&over), SplitError::TooLong);
        // Expansion that outgrows the buffer is an error, not an overwrite.
        let e2: &dyn Fn(&str) -> Option<&'static str> = &|_| Some("0123456789abcdef");
        for raw in ["/x ${A}", "/x $A"] {
            let (mut buf, mut argv) = ([0u8; 16], Vec::new());
            assert_eq!(split(raw, "x.service", Some(e2), &mut buf, &mut argv), Err(SplitError::TooLong));
        }
        let e3: &dyn Fn(&str) -> Option<&'static str> = &|_| Some("012345");
        let (mut buf, mut argv) = ([0u8; 16], Vec::new());
        assert_eq!(split("/x ${A}", "x.service", Some(e3), &mut buf, &mut argv), Ok(Program::Absolute));
        assert_eq!(argv.as_slice(), &[c"/x", c"012345"]);
        for err in [SplitError::UnterminatedQuote, SplitError::MissingArgv0, SplitError::TooLong] {
            assert!(!err.message().is_empty());
        }
    }

    #[test]
    fn load_time_check() {
        assert_eq!(check("/bin/x 'a b' $V", false), Ok(()));
        assert_eq!(check("x", false), Ok(()));
        assert_eq!(check("$PROGRAM arg", false), Ok(()));
        assert_eq!(check("%S/tool", false), Ok(()));
        assert_eq!(check("./x", false), Err(SplitError::RelativePath));
        assert_eq!(check("/bin/x 'a", false), Err(SplitError::UnterminatedQuote));
        assert_eq!(check(r"/bin/x \k", false), Err(SplitError::BadEscape));
        assert_eq!(check("''", false), Err(SplitError::EmptyCommand));
        assert_eq!(check("/bin/busybox", true), Err(SplitError::MissingArgv0));
        assert_eq!(check("/bin/busybox sh", true), Ok(()));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b" \t'\"\\$%{}abcnxu0/@;SSHD_OPTS";
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let mut s = std::vec::Vec::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let raw = std::string::String::from_utf8(s).unwrap();
            let _ = check(&raw, seed & 1 == 0);
            for size in [0usize, 8, 64] {
                let mut buf = vec![0u8; size];
                let mut argv = Vec::new();
                let e: &dyn Fn(&str) -> Option<&'static str> = &env;
                if split(&raw, "a@b.service", Some(e), &mut buf, &mut argv).is_ok() {
                    assert!(!argv.is_empty());
                }
            }
        }
    }
}
