//! modules.dep: `modules_dep::check` and `Checked::resolve` as boot.rs calls them (the file
//! checked once, then one wanted module at a time into a list of `MAX_LOADED`, and
//! `is_builtin` for one it does not find), and `resolve` once more for all of them into a
//! small list.
//!
//! Input: the first line holds the wanted module names (separated by spaces or commas), the
//! rest is the modules.dep text (its UTF-8 prefix; boot.rs reads the whole file).
//!
//! Invariants, on success and on every error alike: each path in the output is the path of
//! a well-formed line, appears once, and comes after every dependency its line lists; on
//! success every wanted module is in the output; a `Malformed` error names the first
//! malformed line, an `UnknownModule` names a module that no line defines; the output never
//! holds more than its capacity. Names: `module_name` is the path's last component up to its
//! first '.' (so it is its own module name); `same_module` is reflexive and symmetric.

use crate::utf8_prefix;
use autoinit::boot::MAX_LOADED;
use autoinit::modules_dep::{self, DepError};
use heapless::Vec as HVec;
use std::collections::HashMap;

/// `path: deps` as depmod writes it; `None` for a line that is not.
fn reference_line(line: &str) -> Option<(&str, &str)> {
    let (path, deps) = line.split_once(':')?;
    let path = path.trim();
    (!path.is_empty() && !path.contains(char::is_whitespace)).then_some((path, deps))
}

pub fn check(data: &[u8]) {
    let text = utf8_prefix(data);
    let (first, dep) = text.split_once('\n').unwrap_or((text, ""));
    let wanted: Vec<&str> = first.split([' ', ',']).filter(|w| !w.is_empty()).take(16).collect();

    // The reference: the first line for each path, and the first malformed line.
    let malformed = dep.lines().position(|l| !l.trim().is_empty() && reference_line(l).is_none());
    let mut deps: HashMap<&str, &str> = HashMap::new();
    for (path, d) in dep.lines().filter_map(reference_line) {
        deps.entry(path).or_insert(d);
    }

    // As boot.rs: the file checked once, then each wanted module resolved from it.
    match modules_dep::check(dep) {
        Ok(checked) => {
            assert_eq!(malformed, None, "a malformed modules.dep passed the check");
            for &name in &wanted {
                let mut out: HVec<&str, MAX_LOADED> = HVec::new();
                let r = checked.resolve(&[name], &mut out);
                if matches!(r, Err(DepError::UnknownModule(_))) {
                    let _ = modules_dep::is_builtin(dep, name);
                }
                check_result(dep, &deps, malformed, &[name], &out, r);
                check_names(name);
            }
        }
        Err(e) => assert_eq!(e, DepError::Malformed { line: malformed.map_or(0, |i| i + 1) }, "check"),
    }
    // And all at once, checking the file too, into a small list.
    let mut out: HVec<&str, 8> = HVec::new();
    let r = modules_dep::resolve(dep, &wanted, &mut out);
    check_result(dep, &deps, malformed, &wanted, &out, r);
    for p in &out {
        let _ = modules_dep::compression(p);
        check_names(p);
    }
}

fn check_names(p: &str) {
    let name = modules_dep::module_name(p);
    let base = p.rsplit('/').next().unwrap_or(p);
    let suffix = base.strip_prefix(name).unwrap_or_else(|| panic!("module_name({p:?}) = {name:?}"));
    assert!(!name.contains(['.', '/']) && (suffix.is_empty() || suffix.starts_with('.')), "module_name({p:?}) = {name:?}");
    assert_eq!(modules_dep::module_name(name), name, "module_name is not idempotent on {p:?}");
    assert!(modules_dep::same_module(p, p));
    assert!(modules_dep::same_module(p, name) && modules_dep::same_module(name, p));
}

fn check_result<const N: usize>(
    dep: &str,
    deps: &HashMap<&str, &str>,
    malformed: Option<usize>,
    wanted: &[&str],
    out: &HVec<&str, N>,
    r: Result<(), DepError<'_>>,
) {
    assert!(out.len() <= N);
    for (i, p) in out.iter().enumerate() {
        let line_deps = deps.get(p).unwrap_or_else(|| panic!("{p:?} in the output has no line in modules.dep"));
        assert!(!out[..i].contains(p), "{p:?} twice in {out:?}");
        for d in line_deps.split_ascii_whitespace() {
            assert!(out[..i].contains(&d), "{p:?} comes before its dependency {d:?}: {out:?}");
        }
    }
    match r {
        Ok(()) => {
            assert_eq!(malformed, None, "a malformed modules.dep was accepted");
            for w in wanted {
                assert!(out.iter().any(|p| modules_dep::same_module(p, w)), "{w:?} missing from {out:?}");
            }
        }
        Err(DepError::Malformed { line }) => {
            assert_eq!(Some(line), malformed.map(|i| i + 1), "wrong malformed line");
            assert!(out.is_empty());
        }
        Err(DepError::UnknownModule(m)) => {
            assert_eq!(malformed, None);
            // A wanted name is looked up by module name, a dependency by its exact path.
            let is_wanted = wanted.iter().any(|w| std::ptr::eq(*w, m));
            let defined = if is_wanted {
                dep.lines().filter_map(reference_line).any(|(p, _)| modules_dep::same_module(p, m))
            } else {
                deps.contains_key(m)
            };
            assert!(!defined, "{m:?} reported unknown but is defined");
        }
        Err(DepError::TooMany) => assert_eq!(out.len(), N, "TooMany before the output was full"),
        Err(DepError::Cycle) => assert_eq!(malformed, None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample() {
        super::check(b"vfat ext4,loop nosuch\nkernel/fs/fat/fat.ko.xz:\nkernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz\nkernel/drivers/block/loop.ko:\n");
    }

    #[test]
    #[should_panic(expected = "malformed")]
    fn reference_disagreement_is_caught() {
        let deps = std::collections::HashMap::new();
        let out: heapless::Vec<&str, 4> = heapless::Vec::new();
        super::check_result("a.ko:\nbroken\n", &deps, Some(1), &["a"], &out, Ok(()));
    }
}
