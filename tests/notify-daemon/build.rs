//! Links the notify daemon exactly like autoinit: see linker/link.rs.

include!("../../linker/link.rs");

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    if !emit_link_args(&root.join("../../linker"), &target) {
        panic!("notify-daemon: unsupported target {target}; build with --target and one of: {}",
               SUPPORTED.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "));
    }
}
