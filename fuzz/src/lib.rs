//! The invariant checks behind autoinit's fuzz targets: one module per parser that reads
//! outside data, each with `pub fn check(data: &[u8])`, which calls the parser the way
//! init/ does and panics (so libFuzzer records a crash) when an invariant does not hold.
//!
//! `fuzz_targets/NAME.rs` only hands libFuzzer's input to `NAME::check`. The unit tests below
//! run every check over its seeds (`seeds/NAME/`) and regression inputs
//! (`regressions/NAME/`) on stable Rust, without libFuzzer: `cargo test --manifest-path
//! fuzz/Cargo.toml`. README.md says how to add a target.

pub mod cmdline;
pub mod container_spec;
pub mod control_proto;
pub mod env;
pub mod exec_line;
pub mod legacy_env;
pub mod modules_dep;
pub mod mountopts;
pub mod mounts;
pub mod notify_msg;
pub mod outlog;
pub mod partition;
pub mod passwd;
pub mod persist;
pub mod sha256;
pub mod superblock;
pub mod tar;
pub mod unit;

/// One fuzz target: its name (the `[[bin]]` in Cargo.toml, the file in fuzz_targets/, the
/// directories in seeds/ and regressions/) and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every target. Cargo.toml's `[[bin]]` list must name the same ones (a test checks it).
pub const TARGETS: &[Target] = &[
    Target { name: "cmdline", check: cmdline::check },
    Target { name: "legacy_env", check: legacy_env::check },
    Target { name: "modules_dep", check: modules_dep::check },
    Target { name: "tar", check: tar::check },
    Target { name: "sha256", check: sha256::check },
    Target { name: "partition", check: partition::check },
    Target { name: "superblock", check: superblock::check },
    Target { name: "mounts", check: mounts::check },
    Target { name: "mountopts", check: mountopts::check },
    Target { name: "unit", check: unit::check },
    Target { name: "exec_line", check: exec_line::check },
    Target { name: "env", check: env::check },
    Target { name: "passwd", check: passwd::check },
    Target { name: "control_proto", check: control_proto::check },
    Target { name: "notify_msg", check: notify_msg::check },
    Target { name: "outlog", check: outlog::check },
    Target { name: "persist", check: persist::check },
    Target { name: "container_spec", check: container_spec::check },
];

/// Whether `part` lies inside `whole` (a parser's output borrowed from its input).
pub fn borrowed_from(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// The longest UTF-8 prefix of `data`, as init/ keeps of a file that is not all UTF-8
/// (pid1.rs for /proc/cmdline, shutdown.rs for /proc/mounts).
pub fn utf8_prefix(data: &[u8]) -> &str {
    match core::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// A small deterministic generator (xorshift64), for choices a check makes on its own, such
/// as the read sizes of a streaming source: seeded from the input, so a crash reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn files(d: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(d) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect(),
            Err(_) => Vec::new(),
        };
        v.retain(|p| p.file_name().is_some_and(|n| n != "README.md" && n != ".gitkeep"));
        v.sort();
        v
    }

    /// Every seed and every regression input passes its target's check. A regression input
    /// is a crash the fuzzer found, kept after the fix: it must never crash again.
    #[test]
    fn seeds_and_regressions_pass() {
        for t in TARGETS {
            let seeds = files(&dir().join("seeds").join(t.name));
            assert!(!seeds.is_empty(), "fuzz/seeds/{} has no seeds (fuzz/seeds/make-seeds.sh makes them)", t.name);
            for f in seeds.iter().chain(&files(&dir().join("regressions").join(t.name))) {
                let data = std::fs::read(f).unwrap();
                eprintln!("{}: {}", t.name, f.display());
                (t.check)(&data);
            }
        }
    }

    /// TARGETS, Cargo.toml's [[bin]] list and fuzz_targets/ name the same targets.
    #[test]
    fn every_target_is_listed_everywhere() {
        let manifest = std::fs::read_to_string(dir().join("Cargo.toml")).unwrap();
        let mut bins: Vec<String> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = ")).map(|n| n.trim_matches('"').to_string()))
            .collect();
        let mut names: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
        let mut sources: Vec<String> = files(&dir().join("fuzz_targets"))
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        for v in [&mut bins, &mut names, &mut sources] {
            v.sort();
        }
        assert_eq!(bins, names, "Cargo.toml [[bin]] vs TARGETS");
        assert_eq!(sources, names, "fuzz_targets/ vs TARGETS");
        for n in &names {
            let src = std::fs::read_to_string(dir().join("fuzz_targets").join(format!("{n}.rs"))).unwrap();
            assert!(src.contains(&format!("autoinit_fuzz::{n}::check")), "fuzz_targets/{n}.rs must call {n}::check");
        }
    }

    #[test]
    fn helpers() {
        let s = "abc def";
        assert!(borrowed_from(&s[4..], s));
        assert!(!borrowed_from(&String::from("def"), s));
        assert_eq!(utf8_prefix(b"ab\xffcd"), "ab");
        let mut r = Rng::new(0);
        assert!((0..100).all(|_| (1..=7).contains(&r.size(7))));
    }
}
