//! Command lines: `exec_line::split` (spawn.rs, at start time) with `$VAR` expansion from a
//! service environment built by `EnvTable::set_entry`, and `exec_line::check` (unit.rs, at
//! load). Input: a flags byte (bit 0: `@` prefix, bit 1: `:` prefix, so no `$` expansion),
//! then UTF-8 text: the command, optionally followed by `\x01` and `NAME=value` lines that
//! make the environment.
//!
//! Invariants: every argument is NUL-free and together they fit `ARG_BYTES` (their NULs
//! included) and `MAX_ARGS`; a success is what a straightforward reference splitter (written
//! here from systemd.service(5)) gives, and the reference's arguments are always accepted
//! when they fit with room for the longest raw word; a syntax error of the reference is
//! `split`'s error too (unless a limit is hit first); `check` accepts whatever `split`
//! accepts, and its `@` rule agrees with the number of arguments when no `$` is involved.

use crate::utf8_prefix;
use autoinit::env::EnvTable;
use autoinit::exec_line::{self, ARG_BYTES, MAX_ARGS, NAME_BYTES, Program, SplitError};
use autoinit::unit;
use core::ffi::CStr;

/// A service environment as `split` takes it, and as the reference takes it.
pub(crate) type Vars<'f, 'e> = Option<&'f dyn Fn(&str) -> Option<&'e str>>;
type RefVars<'f> = Option<&'f dyn Fn(&str) -> Option<String>>;

const UNIT_NAME: &str = "web@site\\x2done.service";

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// One word, unquoted and unescaped, and where the next starts; None at the end.
fn ref_word(s: &[u8], mut i: usize) -> Option<Result<(Vec<u8>, usize), SplitError>> {
    while s.get(i).is_some_and(|&b| is_ws(b)) {
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut quote = None;
    while i < s.len() {
        let b = s[i];
        i += 1;
        if b == 0 {
            return Some(Err(SplitError::NulByte));
        }
        if quote.is_none() && is_ws(b) {
            return Some(Ok((out, i)));
        }
        if quote.is_none() && (b == b'\'' || b == b'"') {
            quote = Some(b);
        } else if quote == Some(b) {
            quote = None;
        } else if b == b'\\' {
            let Some(&c) = s.get(i) else { return Some(Err(SplitError::BadEscape)) };
            i += 1;
            let simple = match c {
                b'a' => Some(7),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(11),
                b's' | b' ' => Some(b' '),
                b'\\' | b'"' | b'\'' | b';' => Some(c),
                _ => None,
            };
            if let Some(x) = simple {
                out.push(x);
                continue;
            }
            let (n, radix, first) = match c {
                b'x' => (2, 16, 0),
                b'u' => (4, 16, 0),
                b'U' => (8, 16, 0),
                b'0'..=b'7' => (2, 8, u32::from(c - b'0')),
                _ => return Some(Err(SplitError::BadEscape)),
            };
            let Some(digits) = s.get(i..i + n) else { return Some(Err(SplitError::BadEscape)) };
            i += n;
            let mut v = u64::from(first);
            for &d in digits {
                let Some(d) = char::from(d).to_digit(radix) else { return Some(Err(SplitError::BadEscape)) };
                v = v * u64::from(radix) + u64::from(d);
            }
            if v == 0 {
                return Some(Err(SplitError::NulByte));
            }
            if matches!(c, b'x' | b'0'..=b'7') {
                match u8::try_from(v) {
                    Ok(x) => out.push(x),
                    Err(_) => return Some(Err(SplitError::BadEscape)),
                }
            } else {
                match u32::try_from(v).ok().and_then(char::from_u32) {
                    Some(ch) => out.extend_from_slice(ch.to_string().as_bytes()),
                    None => return Some(Err(SplitError::BadEscape)),
                }
            }
        } else {
            out.push(b);
        }
    }
    if quote.is_some() { Some(Err(SplitError::UnterminatedQuote)) } else { Some(Ok((out, i))) }
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && (n[0].is_ascii_alphabetic() || n[0] == b'_') && n.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The arguments, with the longest raw (unquoted, unexpanded) word.
fn reference(raw: &str, env: RefVars<'_>) -> Result<(Vec<Vec<u8>>, usize), SplitError> {
    let s = raw.as_bytes();
    let (mut args, mut longest, mut i) = (Vec::new(), 0, 0);
    while let Some(w) = ref_word(s, i) {
        let (word, next) = w?;
        i = next;
        longest = longest.max(word.len());
        let get = |name: &[u8]| -> Result<Option<String>, SplitError> {
            if name.len() > NAME_BYTES {
                return Err(SplitError::TooLong);
            }
            Ok(core::str::from_utf8(name).ok().and_then(|n| env.and_then(|e| e(n))))
        };
        if let (Some(_), Some(name)) = (env, word.strip_prefix(b"$"))
            && valid_name(name)
        {
            let value = get(name)?.unwrap_or_default();
            args.extend(value.as_bytes().split(|&b| is_ws(b)).filter(|p| !p.is_empty()).map(<[u8]>::to_vec));
            continue;
        }
        let mut out = Vec::new();
        let mut j = 0;
        while j < word.len() {
            let b = word[j];
            j += 1;
            match b {
                b'%' => match word.get(j) {
                    Some(&c) => {
                        j += 1;
                        match unit::specifier(c, UNIT_NAME) {
                            Some(v) => out.extend(v.bytes()),
                            None => out.extend([b'%', c]),
                        }
                    }
                    None => out.push(b'%'),
                },
                b'$' if env.is_some() => match word.get(j) {
                    Some(b'$') => {
                        j += 1;
                        out.push(b'$');
                    }
                    Some(b'{') => match word[j + 1..].iter().position(|&c| c == b'}') {
                        Some(p) if valid_name(&word[j + 1..j + 1 + p]) => {
                            if let Some(v) = get(&word[j + 1..j + 1 + p])? {
                                out.extend_from_slice(v.as_bytes());
                            }
                            j += p + 2;
                        }
                        _ => out.push(b'$'),
                    },
                    _ => out.push(b'$'),
                },
                b => out.push(b),
            }
        }
        args.push(out);
    }
    Ok((args, longest))
}

/// `split` as spawn.rs calls it, with the service's environment: (result, arguments).
fn split<'e>(raw: &str, table: &'e EnvTable<16, 1024>, no_expansion: bool) -> (Result<Program, SplitError>, Vec<Vec<u8>>) {
    let lookup = move |k: &str| -> Option<&'e str> { table.lookup(k) };
    let vars: Vars<'_, 'e> = if no_expansion { None } else { Some(&lookup) };
    let mut buf = [0u8; ARG_BYTES];
    let mut argv: heapless::Vec<&CStr, MAX_ARGS> = heapless::Vec::new();
    let got = exec_line::split(raw, UNIT_NAME, vars, &mut buf, &mut argv);
    (got, argv.iter().map(|a| a.to_bytes().to_vec()).collect())
}

pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (argv0_override, no_expansion) = (flags & 1 != 0, flags & 2 != 0);
    let text = utf8_prefix(rest);
    let (raw, env_text) = text.split_once('\x01').unwrap_or((text, ""));
    let mut table: EnvTable<16, 1024> = EnvTable::new();
    for line in env_text.split('\n') {
        let _ = table.set_entry(line);
    }
    let owned = |k: &str| table.lookup(k).map(str::to_string);
    let ref_vars: RefVars<'_> = if no_expansion { None } else { Some(&owned) };
    let (got, args) = split(raw, &table, no_expansion);
    let expected = reference(raw, ref_vars);
    let checked = exec_line::check(raw, argv0_override);

    match got {
        Ok(program) => {
            let bytes: usize = args.iter().map(|a| a.len() + 1).sum();
            assert!(bytes <= ARG_BYTES && args.len() <= MAX_ARGS);
            assert!(args.iter().all(|a| !a.contains(&0)));
            let first = &args[0];
            match program {
                Program::Absolute => assert_eq!(first.first(), Some(&b'/')),
                Program::Search => assert!(!first.is_empty() && !first.contains(&b'/')),
            }
            assert_eq!(expected.as_ref().map(|e| &e.0), Ok(&args), "split {raw:?}");
            assert!(exec_line::check(raw, false).is_ok(), "{raw:?} splits but check refuses it: {:?}", exec_line::check(raw, false));
            if !raw.contains('$') {
                assert_eq!(exec_line::check(raw, true).is_ok(), args.len() >= 2, "@ rule for {raw:?} with {} arguments", args.len());
            }
        }
        Err(e) => {
            match &expected {
                Ok((want, longest)) => {
                    let bytes: usize = want.iter().map(|a| a.len() + 1).sum();
                    let fits = bytes + longest < ARG_BYTES && want.len() <= MAX_ARGS;
                    let program_error = match want.first().map(Vec::as_slice) {
                        None | Some([]) => Some(SplitError::EmptyCommand),
                        Some([b'/', ..]) => None,
                        Some(p) if p.contains(&b'/') => Some(SplitError::RelativePath),
                        Some(_) => None,
                    };
                    let nul = want.iter().any(|a| a.contains(&0));
                    assert!(
                        !fits || Some(e) == program_error || (nul && e == SplitError::NulByte),
                        "{raw:?}: {e:?}, but the reference splits it into {want:?}"
                    );
                }
                Err(want) => assert!(
                    e == *want || matches!(e, SplitError::TooLong | SplitError::TooManyArgs),
                    "{raw:?}: {e:?}, the reference says {want:?}"
                ),
            }
        }
    }
    // The load-time check refuses what can never split, whatever the environment.
    if let Err(e @ (SplitError::UnterminatedQuote | SplitError::BadEscape | SplitError::NulByte)) = checked {
        assert!(got.is_err(), "check refuses {raw:?} ({e:?}) but it splits");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for (flags, s) in [
            (0u8, "/usr/sbin/sshd -D $SSHD_OPTS\x01SSHD_OPTS=-o  LogLevel=DEBUG\t-4"),
            (1, "/bin/sh sh -c 'echo \"%n\" ${HOME}x $$'\x01HOME=/root"),
            (2, "/bin/echo $HOME"),
            (0, "$CMD -x\x01CMD=/bin/true"),
            (0, "\"\" x"),
            (0, "a/b"),
            (0, "/x \\x00"),
            (0, "/x \\u00e9 \\101 \\U0001F600 \\Uffffffff"),
            (0, "/x 'unterminated"),
            (0, "$EMPTY\x01EMPTY="),
        ] {
            let mut d = vec![flags];
            d.extend_from_slice(s.as_bytes());
            super::check(&d);
        }
        let mut long = vec![0u8];
        long.extend(std::iter::repeat_n(b"/x%n ".as_slice(), 300).flatten());
        super::check(&long);
    }
}
