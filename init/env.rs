//! A service's environment: `Environment=` assignments, EnvironmentFile= files, and the
//! fixed-capacity table they go into, whose entries are ready for execve (pure, host-tested).
//!
//! The runtime fills a [`ServiceEnv`] in systemd's order: its own base variables, then each
//! Environment= line, then each EnvironmentFile= (files override Environment=); a later
//! assignment replaces an earlier one of the same name.

use core::ffi::CStr;
use heapless::Vec;

use crate::exec_line::{SplitError, Words, valid_env_name};
use crate::unit;

/// Variables in a service's environment.
pub const SERVICE_ENV_VARS: usize = 64;
/// Bytes of all `NAME=value\0` entries of a service's environment.
pub const SERVICE_ENV_BYTES: usize = 4096;
/// The table the runtime builds for one service start (about 5 KiB).
pub type ServiceEnv = EnvTable<SERVICE_ENV_VARS, SERVICE_ENV_BYTES>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvError {
    /// The name is not `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidName,
    MissingEquals,
    UnterminatedQuote,
    BadEscape,
    NulByte,
    /// An escape produced a value that is not UTF-8.
    NotUtf8,
    /// More than N variables.
    TooManyVars,
    /// More than BYTES bytes.
    TooLong,
}

impl EnvError {
    pub fn message(self) -> &'static str {
        match self {
            EnvError::InvalidName => "invalid variable name (expected [A-Za-z_][A-Za-z0-9_]*)",
            EnvError::MissingEquals => "expected NAME=VALUE",
            EnvError::UnterminatedQuote => "unterminated quote",
            EnvError::BadEscape => "unknown backslash escape",
            EnvError::NulByte => "NUL byte in an assignment",
            EnvError::NotUtf8 => "value is not UTF-8",
            EnvError::TooManyVars => "too many variables (SERVICE_ENV_VARS = 64)",
            EnvError::TooLong => "environment too large (SERVICE_ENV_BYTES = 4096)",
        }
    }
}

fn from_split(e: SplitError) -> EnvError {
    match e {
        SplitError::UnterminatedQuote => EnvError::UnterminatedQuote,
        SplitError::NulByte => EnvError::NulByte,
        SplitError::TooLong | SplitError::TooManyArgs => EnvError::TooLong,
        _ => EnvError::BadEscape,
    }
}

/// `NAME=value\0` entries, at most `N` of them in `BYTES` bytes. Setting a name again
/// replaces its value (the entry moves to the end).
pub struct EnvTable<const N: usize, const BYTES: usize> {
    bytes: [u8; BYTES],
    used: usize,
    /// (start, length with the NUL) of each entry in `bytes`.
    entries: Vec<(usize, usize), N>,
}

impl<const N: usize, const BYTES: usize> Default for EnvTable<N, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const BYTES: usize> EnvTable<N, BYTES> {
    pub const fn new() -> Self {
        EnvTable { bytes: [0; BYTES], used: 0, entries: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.used = 0;
        self.entries.clear();
    }

    fn entry(&self, (start, len): (usize, usize)) -> &[u8] {
        self.bytes.get(start..start.saturating_add(len)).unwrap_or(&[])
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        // A name never holds '=': "A=1" must not find the entry "A=1=x" (A set to "1=x").
        if name.contains(&b'=') {
            return None;
        }
        self.entries.iter().position(|&e| {
            let entry = self.entry(e);
            entry.strip_prefix(name).is_some_and(|rest| rest.first() == Some(&b'='))
        })
    }

    /// The value of `name`.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        let e = *self.entries.get(self.position(name.as_bytes())?)?;
        let entry = self.entry(e);
        let value = entry.get(name.len() + 1..entry.len().saturating_sub(1))?;
        core::str::from_utf8(value).ok()
    }

    /// The entries, for execve's envp.
    pub fn iter(&self) -> impl Iterator<Item = &CStr> {
        self.entries.iter().filter_map(|&e| CStr::from_bytes_with_nul(self.entry(e)).ok())
    }

    /// Removes `name`; false if it was not set.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.position(name.as_bytes()) {
            Some(i) => {
                self.remove_at(i, 0);
                true
            }
            None => false,
        }
    }

    /// Removes entry `i`, moving the bytes after it (and `pending` bytes beyond `used`) down.
    fn remove_at(&mut self, i: usize, pending: usize) {
        if i >= self.entries.len() {
            return;
        }
        let (start, len) = self.entries.remove(i);
        if let Some(tail) = self.bytes.get_mut(start..self.used.saturating_add(pending))
            && len <= tail.len()
        {
            tail.rotate_left(len);
        }
        for e in self.entries.iter_mut() {
            if e.0 > start {
                e.0 -= len;
            }
        }
        self.used = self.used.saturating_sub(len);
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), EnvError> {
        let mut pending = 0;
        for &b in name.as_bytes().iter().chain(b"=").chain(value.as_bytes()) {
            self.push_pending(&mut pending, b)?;
        }
        self.commit_pending(pending)
    }

    /// Sets a `NAME=value` string.
    pub fn set_entry(&mut self, entry: &str) -> Result<(), EnvError> {
        let mut pending = 0;
        for &b in entry.as_bytes() {
            self.push_pending(&mut pending, b)?;
        }
        self.commit_pending(pending)
    }

    /// Appends a byte to the entry being written after the last one.
    fn push_pending(&mut self, pending: &mut usize, b: u8) -> Result<(), EnvError> {
        if b == 0 {
            return Err(EnvError::NulByte);
        }
        let at = self.used.saturating_add(*pending);
        *self.bytes.get_mut(at).ok_or(EnvError::TooLong)? = b;
        *pending += 1;
        Ok(())
    }

    /// Validates the `pending` bytes after the last entry as `NAME=value`, replaces an older
    /// `NAME` and registers the entry.
    fn commit_pending(&mut self, pending: usize) -> Result<(), EnvError> {
        let end = self.used.saturating_add(pending);
        let entry = self.bytes.get(self.used..end).ok_or(EnvError::TooLong)?;
        let name_len = entry.iter().position(|&b| b == b'=').ok_or(EnvError::MissingEquals)?;
        let name = entry.get(..name_len).unwrap_or(&[]);
        if !valid_env_name(name) {
            return Err(EnvError::InvalidName);
        }
        if core::str::from_utf8(entry).is_err() {
            return Err(EnvError::NotUtf8);
        }
        let existing = self.position(name);
        if existing.is_none() && self.entries.is_full() {
            return Err(EnvError::TooManyVars);
        }
        if end >= BYTES {
            return Err(EnvError::TooLong); // no room for the NUL
        }
        if let Some(i) = existing {
            self.remove_at(i, pending);
        }
        let start = self.used;
        *self.bytes.get_mut(start + pending).ok_or(EnvError::TooLong)? = 0;
        self.entries.push((start, pending + 1)).map_err(|_| EnvError::TooManyVars)?;
        self.used = start + pending + 1;
        Ok(())
    }
}

/// Adds the assignments of one `Environment=` value (`A=1 "B=two words" 'C=x'`, quoted and
/// escaped as command lines are, with `%` specifiers of `unit_name` expanded) to `table`.
/// Stops at the first bad assignment; the ones before it are set.
pub fn assignments<const N: usize, const BYTES: usize>(
    raw: &str,
    unit_name: &str,
    table: &mut EnvTable<N, BYTES>,
) -> Result<(), EnvError> {
    let mut words = Words::new(raw);
    loop {
        let mut pending = 0usize;
        let mut stored_error = None;
        let mut percent = false;
        let mut sink = |b: u8| -> Result<(), SplitError> {
            let mut put = |x: u8| {
                table.push_pending(&mut pending, x).map_err(|e| {
                    stored_error = Some(e);
                    SplitError::TooLong
                })
            };
            if percent {
                percent = false;
                match unit::specifier(b, unit_name) {
                    Some(v) => v.bytes().try_for_each(put),
                    None => put(b'%').and_then(|()| put(b)),
                }
            } else if b == b'%' {
                percent = true;
                Ok(())
            } else {
                put(b)
            }
        };
        match words.next_word(&mut sink) {
            None => return Ok(()),
            Some(Err(e)) => return Err(stored_error.unwrap_or(from_split(e))),
            Some(Ok(())) => {}
        }
        if percent {
            table.push_pending(&mut pending, b'%')?;
        }
        table.commit_pending(pending)?;
    }
}

/// UTF-8 validation one byte at a time (the Unicode table of well-formed sequences), for a
/// word whose escapes (`\xff`, `\377`) can produce any byte and that is not kept anywhere.
#[derive(Clone, Copy)]
struct Utf8Check {
    /// Continuation bytes still expected.
    need: u8,
    /// The range the next continuation byte must be in.
    low: u8,
    high: u8,
    bad: bool,
}

impl Utf8Check {
    const fn new() -> Self {
        Utf8Check { need: 0, low: 0x80, high: 0xBF, bad: false }
    }

    fn push(&mut self, b: u8) {
        if self.need > 0 {
            self.bad |= b < self.low || b > self.high;
            (self.need, self.low, self.high) = (self.need.saturating_sub(1), 0x80, 0xBF);
            return;
        }
        (self.need, self.low, self.high) = match b {
            0x00..=0x7F => (0, 0x80, 0xBF),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => {
                self.bad = true;
                (0, 0x80, 0xBF)
            }
        };
    }

    fn valid_end(&self) -> bool {
        !self.bad && self.need == 0
    }
}

/// Checks an `Environment=` value when the unit is loaded: everything [`assignments`] would
/// refuse whatever the unit's name and the table's room.
pub fn check_assignments(raw: &str) -> Result<(), EnvError> {
    let mut words = Words::new(raw);
    loop {
        let (mut len, mut name_ok, mut equals) = (0usize, true, false);
        let mut utf8 = Utf8Check::new();
        let mut sink = |b: u8| {
            utf8.push(b);
            if !equals {
                if b == b'=' {
                    equals = true;
                } else {
                    name_ok &= b == b'_' || b.is_ascii_alphabetic() || (len > 0 && b.is_ascii_digit());
                    len += 1;
                }
            }
            Ok(())
        };
        match words.next_word(&mut sink) {
            None => return Ok(()),
            Some(r) => r.map_err(from_split)?,
        }
        if !equals {
            return Err(EnvError::MissingEquals);
        }
        if !name_ok || len == 0 {
            return Err(EnvError::InvalidName);
        }
        if !utf8.valid_end() {
            return Err(EnvError::NotUtf8);
        }
    }
}

/// An error in an environment file, at a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: u32,
    pub error: EnvError,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    PreKey,
    Comment,
    Key,
    PreValue,
    Value,
    SingleQuote,
    DoubleQuote,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Reads an EnvironmentFile= into `table`: `NAME=value` lines, `#`/`;` comment lines, an
/// optional `export `, values unquoted (surrounding blanks dropped, `\x` is x, a `\` at the
/// end of a line continues it), in single quotes (literal, may span lines) or in double
/// quotes (`\"`, `\\`, `` \` ``, `\$` unescaped, `\` newline continues, other `\` kept);
/// quoted and unquoted parts concatenate (`A="x y"z`). Returns the number of assignments.
/// Stops at the first error, naming its line; the assignments before it stay set.
pub fn parse_env_file<const N: usize, const BYTES: usize>(
    text: &str,
    table: &mut EnvTable<N, BYTES>,
) -> Result<usize, EnvFileError> {
    let bytes = text.as_bytes();
    let (mut line, mut entry_line) = (1u32, 1u32);
    let mut count = 0usize;
    let mut state = State::PreKey;
    let mut pending = 0usize;
    // Blanks at the end of the unquoted text written so far: not part of a name or value.
    let mut trailing = 0usize;
    let mut i = 0usize;
    let at = |line: u32| move |error: EnvError| EnvFileError { line, error };
    while let Some(&b) = bytes.get(i) {
        i += 1;
        let newline = b == b'\n';
        match state {
            State::PreKey => {
                if b == b'#' || b == b';' {
                    state = State::Comment;
                } else if !newline && !is_blank(b) {
                    entry_line = line;
                    (pending, trailing) = (0, 0);
                    state = State::Key;
                    let after = bytes.get(i - 1..).and_then(|r| r.strip_prefix(b"export"));
                    match after {
                        Some(rest) if rest.first().is_some_and(|&c| is_blank(c)) => {
                            i += "export".len() - 1 + rest.iter().take_while(|&&c| is_blank(c)).count();
                        }
                        _ => table.push_pending(&mut pending, b).map_err(at(line))?,
                    }
                }
            }
            State::Comment => {
                if newline {
                    state = State::PreKey;
                }
            }
            State::Key => {
                if newline {
                    return Err(at(line)(EnvError::MissingEquals));
                }
                if b == b'=' {
                    pending = pending.saturating_sub(trailing);
                    trailing = 0;
                    state = State::PreValue;
                } else {
                    trailing = if is_blank(b) { trailing + 1 } else { 0 };
                }
                table.push_pending(&mut pending, b).map_err(at(line))?;
            }
            State::PreValue | State::Value => {
                if state == State::PreValue && is_blank(b) {
                    // Blanks after '=' are not part of the value.
                } else if newline {
                    pending = pending.saturating_sub(trailing);
                    table.commit_pending(pending).map_err(at(entry_line))?;
                    count += 1;
                    state = State::PreKey;
                } else {
                    state = State::Value;
                    trailing = if is_blank(b) { trailing + 1 } else { 0 };
                    match b {
                        b'\'' => state = State::SingleQuote,
                        b'"' => state = State::DoubleQuote,
                        b'\\' => match bytes.get(i) {
                            Some(b'\n') => {
                                i += 1;
                                line = line.saturating_add(1);
                            }
                            Some(&c) => {
                                i += 1;
                                table.push_pending(&mut pending, c).map_err(at(line))?;
                            }
                            None => {}
                        },
                        _ => table.push_pending(&mut pending, b).map_err(at(line))?,
                    }
                }
            }
            State::SingleQuote => {
                if b == b'\'' {
                    state = State::Value;
                } else {
                    table.push_pending(&mut pending, b).map_err(at(line))?;
                }
            }
            State::DoubleQuote => match b {
                b'"' => state = State::Value,
                b'\\' => match bytes.get(i) {
                    Some(&c @ (b'"' | b'\\' | b'`' | b'$')) => {
                        i += 1;
                        table.push_pending(&mut pending, c).map_err(at(line))?;
                    }
                    Some(b'\n') => {
                        i += 1;
                        line = line.saturating_add(1);
                    }
                    _ => table.push_pending(&mut pending, b).map_err(at(line))?,
                },
                _ => table.push_pending(&mut pending, b).map_err(at(line))?,
            },
        }
        if newline {
            line = line.saturating_add(1);
        }
    }
    match state {
        State::Key => Err(at(line)(EnvError::MissingEquals)),
        State::SingleQuote | State::DoubleQuote => Err(at(entry_line)(EnvError::UnterminatedQuote)),
        State::PreValue | State::Value => {
            pending = pending.saturating_sub(trailing);
            table.commit_pending(pending).map_err(at(entry_line))?;
            Ok(count + 1)
        }
        State::PreKey | State::Comment => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = EnvTable<4, 32>;

    fn entries<const N: usize, const B: usize>(t: &EnvTable<N, B>) -> std::vec::Vec<&str> {
        t.iter().map(|c| c.to_str().unwrap()).collect()
    }

    #[test]
    fn table_overrides_and_removes() {
        let mut t = ServiceEnv::new();
        t.set("PATH", "/usr/bin:/bin").unwrap();
        t.set_entry("A=1").unwrap();
        t.set("B", "two words").unwrap();
        t.set("A", "again").unwrap();
        assert_eq!(entries(&t), ["PATH=/usr/bin:/bin", "B=two words", "A=again"]);
        assert_eq!(t.lookup("A"), Some("again"));
        assert_eq!(t.lookup("B"), Some("two words"));
        assert_eq!(t.lookup("PAT"), None, "a prefix of a name is not the name");
        // Found by fuzzing: a "name" with '=' matched the entry of its part before the '='.
        t.set("C", "1=x").unwrap();
        assert_eq!(t.lookup("C=1"), None);
        assert!(!t.remove("C=1"));
        assert_eq!(t.lookup("C"), Some("1=x"));
        assert!(t.remove("C"));
        assert!(t.remove("PATH"));
        assert!(!t.remove("PATH"));
        assert_eq!(entries(&t), ["B=two words", "A=again"]);
        t.set("E", "").unwrap();
        assert_eq!(t.lookup("E"), Some(""));
        assert_eq!(t.len(), 3);
        t.clear();
        assert!(t.is_empty() && t.lookup("A").is_none());
    }

    #[test]
    fn table_capacity() {
        let mut t = Small::new();
        for name in ["A", "B", "C", "D"] {
            t.set(name, "1").unwrap();
        }
        assert_eq!(t.set("E", "1"), Err(EnvError::TooManyVars));
        // Replacing a name needs no new slot.
        t.set("B", "2").unwrap();
        assert_eq!(entries(&t), ["A=1", "C=1", "D=1", "B=2"]);
        let mut t = Small::new();
        t.set("A", "0123456789012345678901234567").unwrap(); // 31 bytes with the NUL
        assert_eq!(t.set("B", ""), Err(EnvError::TooLong));
        // Replacing frees the old bytes first? No: the new value is written before the old one
        // goes, so a replacement needs room for both.
        assert_eq!(t.set("A", "x"), Err(EnvError::TooLong));
        assert_eq!(t.lookup("A").map(str::len), Some(28), "a failed set leaves the table alone");
        let mut t = Small::new();
        t.set("A", "0123456789").unwrap();
        t.set("B", "x").unwrap();
        t.set("A", "y").unwrap();
        assert_eq!(entries(&t), ["B=x", "A=y"]);
        t.set("C", "0123456789012345678").unwrap();
        assert_eq!(entries(&t), ["B=x", "A=y", "C=0123456789012345678"]);
        assert_eq!(t.set("D", ""), Err(EnvError::TooLong));
    }

    #[test]
    fn table_rejects_bad_entries() {
        let mut t = Small::new();
        assert_eq!(t.set("1A", "x"), Err(EnvError::InvalidName));
        assert_eq!(t.set("A-B", "x"), Err(EnvError::InvalidName));
        assert_eq!(t.set("", "x"), Err(EnvError::InvalidName));
        assert_eq!(t.set_entry("NOEQUALS"), Err(EnvError::MissingEquals));
        assert_eq!(t.set("A", "a\0b"), Err(EnvError::NulByte));
        assert!(t.is_empty());
    }

    #[test]
    fn environment_lines() {
        let mut t = ServiceEnv::new();
        assignments(r#"A=1 "B=two words" 'C=x y' D="q"r E= F=\x41\t U=%n/%i"#, "app@one.service", &mut t).unwrap();
        assert_eq!(entries(&t), ["A=1", "B=two words", "C=x y", "D=qr", "E=", "F=A\t", "U=app@one.service/one"]);
        assignments("A=2 P=50%", "x.service", &mut t).unwrap();
        assert_eq!(t.lookup("A"), Some("2"));
        assert_eq!(t.lookup("P"), Some("50%"));
        assignments("Q=%H", "x.service", &mut t).unwrap();
        assert_eq!(t.lookup("Q"), Some("%H"), "unsupported specifiers stay as written");
        assert_eq!(assignments("OK=1 1BAD=2", "x.service", &mut t), Err(EnvError::InvalidName));
        assert_eq!(t.lookup("OK"), Some("1"), "assignments before the bad one are set");
        assert_eq!(assignments("NOVALUE", "x.service", &mut t), Err(EnvError::MissingEquals));
        assert_eq!(assignments("A='x", "x.service", &mut t), Err(EnvError::UnterminatedQuote));
        assert_eq!(assignments(r"A=\q", "x.service", &mut t), Err(EnvError::BadEscape));
        assert_eq!(assignments(r"A=\xff", "x.service", &mut t), Err(EnvError::NotUtf8));
        assert_eq!(assignments(r"A=\x00", "x.service", &mut t), Err(EnvError::NulByte));
        let mut small = Small::new();
        assert_eq!(assignments("A=%n", "a-very-long-unit-name-indeed.service", &mut small), Err(EnvError::TooLong));
        assert_eq!(assignments("A=x ", "x.service", &mut small), Ok(()));
        assert_eq!(assignments("B=1 C=1 D=1 E=1", "x.service", &mut small), Err(EnvError::TooManyVars));
    }

    #[test]
    fn check_at_load() {
        assert_eq!(check_assignments(r#"A=1 "B=two words" _x9=  "#), Ok(()));
        assert_eq!(check_assignments(""), Ok(()));
        assert_eq!(check_assignments("A=1 B"), Err(EnvError::MissingEquals));
        assert_eq!(check_assignments("=1"), Err(EnvError::InvalidName));
        assert_eq!(check_assignments("9A=1"), Err(EnvError::InvalidName));
        assert_eq!(check_assignments("A.B=1"), Err(EnvError::InvalidName));
        assert_eq!(check_assignments("A=\"x"), Err(EnvError::UnterminatedQuote));
        assert_eq!(check_assignments(r"A=\q"), Err(EnvError::BadEscape));
        // Escapes that make bytes which are not UTF-8 (found by fuzzing: the unit loaded,
        // then every start failed with "value is not UTF-8").
        assert_eq!(check_assignments(r"A=\xff"), Err(EnvError::NotUtf8));
        assert_eq!(check_assignments(r"A=\303"), Err(EnvError::NotUtf8), "a cut sequence");
        assert_eq!(check_assignments(r"A=\xed\xa0\x80"), Err(EnvError::NotUtf8), "a surrogate");
        assert_eq!(check_assignments(r"A=\xc0\xaf"), Err(EnvError::NotUtf8), "an overlong form");
        assert_eq!(check_assignments(r"A=\xc3\xa9 B=é\u00e9 C=\xf0\x9f\x98\x80"), Ok(()));
    }

    /// check_assignments accepts exactly the bytes core::str::from_utf8 accepts.
    #[test]
    fn utf8_check_agrees_with_core() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..50_000 {
            let mut bytes = std::vec::Vec::new();
            for _ in 0..(seed % 6) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly bytes where UTF-8's rules are.
                let b = seed as u8;
                bytes.push(if seed & 0x100 == 0 { 0x80 | (b & 0x7F) } else { b });
            }
            let mut c = Utf8Check::new();
            bytes.iter().for_each(|&b| c.push(b));
            assert_eq!(c.valid_end(), core::str::from_utf8(&bytes).is_ok(), "{bytes:x?}");
        }
    }

    /// Debian's /etc/default/ssh and /etc/default/cron, plus the corners of the format.
    const DEFAULT_FILE: &str = "\
# Default settings for openssh-server. This file is sourced by /bin/sh from
# /etc/init.d/ssh.

# Options to pass to sshd
SSHD_OPTS=

; a semicolon comment
EXTRA_OPTS=\"-L 15\"
export LANG=C.UTF-8
   SPACED   =   value with  spaces   \t
SINGLE='it''s $HOME \\n
two lines'
DOUBLE=\"a \\\"q\\\" \\\\ \\$x \\n \\
joined\"
CONT=one\\
two
MIXED=pre\"mid dle\"'post'\\ x
CRLF=yes\r
export=notakeyword
LAST=no newline";

    #[test]
    fn environment_file() {
        let mut t = ServiceEnv::new();
        assert_eq!(parse_env_file(DEFAULT_FILE, &mut t), Ok(11));
        let get = |k| t.lookup(k).unwrap();
        assert_eq!(get("SSHD_OPTS"), "");
        assert_eq!(get("EXTRA_OPTS"), "-L 15");
        assert_eq!(get("LANG"), "C.UTF-8");
        assert_eq!(get("SPACED"), "value with  spaces");
        assert_eq!(get("SINGLE"), "its $HOME \\n\ntwo lines");
        assert_eq!(get("DOUBLE"), "a \"q\" \\ $x \\n joined");
        assert_eq!(get("CONT"), "onetwo");
        assert_eq!(get("MIXED"), "premid dlepost x");
        assert_eq!(get("CRLF"), "yes");
        assert_eq!(get("export"), "notakeyword");
        assert_eq!(get("LAST"), "no newline");
        assert_eq!(parse_env_file("", &mut t), Ok(0));
        assert_eq!(parse_env_file("# only\n\n", &mut t), Ok(0));
    }

    #[test]
    fn environment_file_errors_name_the_line() {
        let mut t = ServiceEnv::new();
        let e = |text: &str, t: &mut ServiceEnv| parse_env_file(text, t).unwrap_err();
        assert_eq!(e("A=1\nB\nC=3\n", &mut t), EnvFileError { line: 2, error: EnvError::MissingEquals });
        assert_eq!(t.lookup("A"), Some("1"), "lines before the error are set");
        assert_eq!(e("A=1\n\nB-C=2\n", &mut t), EnvFileError { line: 3, error: EnvError::InvalidName });
        assert_eq!(e("A=1\nB='open\n\nstill\n", &mut t), EnvFileError { line: 2, error: EnvError::UnterminatedQuote });
        assert_eq!(e("A=\"x\\\ny\nZ=\"3\nQ\n", &mut t), EnvFileError { line: 4, error: EnvError::MissingEquals });
        assert_eq!(e("#c\nNOEQ", &mut t), EnvFileError { line: 2, error: EnvError::MissingEquals });
        assert_eq!(e("A=a\0b\n", &mut t), EnvFileError { line: 1, error: EnvError::NulByte });
        let mut small = Small::new();
        assert_eq!(parse_env_file("A=1\nB=1\nC=1\nD=1\nE=1\n", &mut small).unwrap_err(), EnvFileError { line: 5, error: EnvError::TooManyVars });
        let mut small = Small::new();
        // 26 digits: the value fits but its NUL does not, reported at the entry's first line;
        // 27: the byte that does not fit is on line 3.
        let text = "A=1\nB=\\\n01234567890123456789012345\n";
        assert_eq!(parse_env_file(text, &mut small).unwrap_err(), EnvFileError { line: 2, error: EnvError::TooLong });
        let mut small = Small::new();
        let text = "A=1\nB=\\\n012345678901234567890123456\n";
        assert_eq!(parse_env_file(text, &mut small).unwrap_err(), EnvFileError { line: 3, error: EnvError::TooLong });
        let mut small = Small::new();
        assert_eq!(parse_env_file("A=1\nB=\\\n0123456789012345678901234\n", &mut small), Ok(2));
    }

    #[test]
    fn lookup_feeds_the_splitter() {
        let mut t = ServiceEnv::new();
        parse_env_file("SSHD_OPTS=\"-o LogLevel=DEBUG\"\n", &mut t).unwrap();
        let mut buf = [0u8; crate::exec_line::ARG_BYTES];
        let mut argv = Vec::new();
        let lookup = |k: &str| t.lookup(k);
        crate::exec_line::split("/usr/sbin/sshd -D $SSHD_OPTS", "ssh.service", Some(&lookup), &mut buf, &mut argv).unwrap();
        assert_eq!(argv.as_slice(), &[c"/usr/sbin/sshd", c"-D", c"-o", c"LogLevel=DEBUG"]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0xdead_beef_cafe_f00du64;
        let alphabet = b"AB_1=\n\r\t '\"\\#;$`export%xn";
        for _ in 0..20_000 {
            let len = (seed % 48) as usize;
            let mut s = std::vec::Vec::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let text = std::string::String::from_utf8(s).unwrap();
            let mut t = Small::new();
            let _ = parse_env_file(&text, &mut t);
            let _ = assignments(&text, "a@b.service", &mut t);
            let _ = check_assignments(&text);
            // Whatever happened, the table is consistent.
            for entry in t.iter() {
                let s = entry.to_str().unwrap();
                let (k, v) = s.split_once('=').unwrap();
                assert_eq!(t.lookup(k), Some(v));
            }
        }
    }
}
