//! A service's environment: `env::parse_env_file` (EnvironmentFile=), `env::assignments`
//! (Environment=, checked at load by `env::check_assignments`) and the `EnvTable` they fill,
//! as spawn.rs uses them, on the input's UTF-8 prefix; and the table itself driven by the
//! input's lines (`NAME=value` sets, `-NAME` removes) against a model.
//!
//! Invariants: the table never holds more than N entries or BYTES bytes; its entries are
//! `NAME=value` with valid, distinct names and `lookup` returns each one's value; `lookup`
//! returns the last assignment of a name (an assignment appended to a file wins); it errs
//! only for a reason (a full table, a bad entry) and then is unchanged; what parses prints
//! back (quoted) to text that parses to the same table, for both syntaxes; a value that
//! `check_assignments` accepts at load is set at start time unless the table is full.

use crate::utf8_prefix;
use autoinit::env::{self, EnvError, EnvTable, ServiceEnv};

const UNIT_NAME: &str = "app@one.service";

fn entries<const N: usize, const B: usize>(t: &EnvTable<N, B>) -> Vec<(String, String)> {
    t.iter()
        .map(|c| {
            let s = c.to_str().expect("entries are UTF-8");
            let (n, v) = s.split_once('=').expect("entries have '='");
            (n.to_string(), v.to_string())
        })
        .collect()
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty() && (b[0].is_ascii_alphabetic() || b[0] == b'_') && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The table is consistent: capacity, names, lookups.
fn consistent<const N: usize, const B: usize>(t: &EnvTable<N, B>) -> Vec<(String, String)> {
    let e = entries(t);
    assert_eq!(e.len(), t.len());
    assert!(e.len() <= N, "{} entries in a table of {N}", e.len());
    let bytes: usize = e.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    assert!(bytes <= B, "{bytes} bytes in a table of {B}");
    for (i, (n, v)) in e.iter().enumerate() {
        assert!(valid_name(n), "invalid name {n:?}");
        assert!(e[..i].iter().all(|(m, _)| m != n), "{n} twice");
        assert_eq!(t.lookup(n), Some(v.as_str()), "lookup {n}");
    }
    e
}

/// An environment file that sets `e`, in order.
fn print_env_file(e: &[(String, String)]) -> String {
    let mut s = String::new();
    for (n, v) in e {
        if v.contains('\'') {
            let esc = v.replace('\\', "\\\\").replace('"', "\\\"").replace('`', "\\`").replace('$', "\\$");
            s += &format!("{n}=\"{esc}\"\n");
        } else {
            s += &format!("{n}='{v}'\n");
        }
    }
    s
}

/// An `Environment=` value that sets `e`, in order.
fn print_assignments(e: &[(String, String)]) -> String {
    e.iter()
        .map(|(n, v)| format!("\"{n}={}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_file(text: &str) {
    let mut t = ServiceEnv::new();
    let r = env::parse_env_file(text, &mut t);
    let e = consistent(&t);
    if let Err(err) = r {
        let lines = text.split('\n').count() as u32;
        assert!((1..=lines).contains(&err.line), "error at line {} of {lines}: {err:?}", err.line);
        return;
    }
    let mut again = ServiceEnv::new();
    let printed = print_env_file(&e);
    env::parse_env_file(&printed, &mut again).unwrap_or_else(|err| panic!("printed file {printed:?}: {err:?}"));
    assert_eq!(entries(&again), e, "parse-print-parse of {printed:?}");
    // A later assignment wins: append one for the first name and for a new one.
    let name = e.first().map_or("ZZ_NEW", |(n, _)| n.as_str());
    let more = format!("{text}\n\n{name}=last\nZZ_NEW='x y'\n");
    let mut t = ServiceEnv::new();
    match env::parse_env_file(&more, &mut t) {
        Ok(_) => {
            assert_eq!(t.lookup(name), Some(if name == "ZZ_NEW" { "x y" } else { "last" }));
            assert_eq!(t.lookup("ZZ_NEW"), Some("x y"));
        }
        Err(err) => assert!(matches!(err.error, EnvError::TooLong | EnvError::TooManyVars), "{more:?}: {err:?}"),
    }
}

fn environment_line(line: &str) {
    let mut t = ServiceEnv::new();
    let r = env::assignments(line, UNIT_NAME, &mut t);
    let e = consistent(&t);
    let checked = env::check_assignments(line);
    match r {
        Ok(()) => {
            // The load check refuses a '%' in a name, which the start expands (`A%i=1`).
            if !line.contains('%') {
                assert_eq!(checked, Ok(()), "{line:?} is set at start but refused at load");
            }
            let printed = print_assignments(&e);
            let mut again = ServiceEnv::new();
            env::assignments(&printed, UNIT_NAME, &mut again).unwrap_or_else(|err| panic!("printed {printed:?}: {err:?}"));
            assert_eq!(entries(&again), e, "parse-print-parse of {printed:?}");
        }
        Err(err) => {
            if checked.is_ok() {
                assert!(matches!(err, EnvError::TooLong | EnvError::TooManyVars), "{line:?} passes the load check but fails at start: {err:?}");
            }
        }
    }
}

/// `EnvTable` against a model, in a small table so that limits are reached.
fn model(text: &str) {
    const N: usize = 4;
    const B: usize = 64;
    let mut t: EnvTable<N, B> = EnvTable::new();
    let mut m: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        if let Some(name) = line.strip_prefix('-') {
            let had = m.iter().position(|(n, _)| n == name);
            assert_eq!(t.remove(name), had.is_some(), "remove {name:?}");
            if let Some(i) = had {
                m.remove(i);
            }
        } else {
            let used: usize = m.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
            let split = line.split_once('=');
            let syntax_ok = !line.contains('\0') && split.is_some_and(|(n, _)| valid_name(n));
            let exists = split.is_some_and(|(n, _)| m.iter().any(|(k, _)| k == n));
            let r = t.set_entry(line);
            match r {
                Ok(()) => {
                    assert!(syntax_ok, "set_entry({line:?}) accepted");
                    let (n, v) = split.unwrap();
                    m.retain(|(k, _)| k != n);
                    m.push((n.to_string(), v.to_string()));
                }
                Err(EnvError::TooManyVars) => assert!(m.len() == N && !exists, "{line:?}: too many with {} entries", m.len()),
                Err(EnvError::TooLong) => assert!(used + line.len() >= B, "{line:?}: too long with {used} bytes used"),
                Err(_) => assert!(!syntax_ok, "set_entry({line:?}) refused: {r:?}"),
            }
            if syntax_ok && (exists || m.len() < N) && used + line.len() < B {
                assert_eq!(r, Ok(()), "set_entry({line:?}) with {used} bytes used");
            }
        }
        assert_eq!(consistent(&t), m, "after {line:?}");
    }
}

pub fn check(data: &[u8]) {
    let text = utf8_prefix(data);
    env_file(text);
    for line in text.split('\n') {
        environment_line(line);
    }
    model(text);
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for s in [
            "# /etc/default/ssh\nSSHD_OPTS=\nexport A=\"x y\" \nB='q\nr'\\\nC=1\\\n2\n",
            "A=1 \"B=two words\" 'C=%n' D=%%",
            "A=\\xff",
            "A%i=1 B=%n",
            "X\n-X\nA=1\nB=2\nC=3\nD=4\nE=5\nA=6\n-B\nF=7",
            "1A=x\nA\0=y\n=z\nA=\"unterminated",
        ] {
            super::check(s.as_bytes());
        }
    }
}
