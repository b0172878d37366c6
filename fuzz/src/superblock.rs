//! Filesystem superblocks: what boot.rs's `probe_device` does with the first `PROBE_BYTES`
//! of a device (`probe`, then `fat_root_dir_beyond` and `apply_fat_root_dir_label` with the
//! bytes it names), and what `try_image` does with the first 4 KiB of a system image
//! (`squashfs_sane`).
//!
//! Invariants: the type is one of the five documented names; a FAT label is at most 11
//! printable ASCII characters without trailing spaces, an ext label at most 16 bytes once
//! decoded; a UUID has blkid's text form for its type and matches itself in either case;
//! a FAT root directory "beyond" the head starts at or after its end and is 1 to
//! `PROBE_BYTES` long, and only for a head `probe` recognises; applying a root-directory
//! label changes a FAT label only; a sane squashfs fits in the file, has a documented block
//! size and compression, and `probe` calls it squashfs.

use autoinit::superblock::{self, FsId, PROBE_BYTES};

fn is_hex(s: &str, upper: bool) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || if upper { (b'A'..=b'F').contains(&b) } else { (b'a'..=b'f').contains(&b) })
}

fn check_id(id: &FsId) {
    assert!(["vfat", "ext2", "ext3", "ext4", "squashfs"].contains(&id.fstype), "fstype {}", id.fstype);
    match id.fstype {
        "vfat" => {
            assert!(id.label.len() <= 11 && !id.label.ends_with(' '), "FAT label {:?}", id.label);
            assert!(id.label.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()), "FAT label {:?}", id.label);
            let (a, b) = id.uuid.split_once('-').expect("FAT serial XXXX-XXXX");
            assert!(a.len() == 4 && b.len() == 4 && is_hex(a, true) && is_hex(b, true), "FAT serial {}", id.uuid);
        }
        "squashfs" => assert!(id.label.is_empty() && id.uuid.is_empty()),
        _ => {
            // 16 bytes, each invalid one at most U+FFFD (3 bytes).
            assert!(id.label.len() <= 48 && !id.label.contains('\0'), "ext label {:?}", id.label);
            let lens: Vec<usize> = id.uuid.split('-').map(str::len).collect();
            assert!(id.uuid.is_empty() || (lens == [8, 4, 4, 4, 12] && id.uuid.split('-').all(|g| is_hex(g, false))), "ext UUID {}", id.uuid);
        }
    }
    if !id.uuid.is_empty() {
        assert!(superblock::uuid_matches(&id.uuid, &id.uuid.to_lowercase()));
        assert!(superblock::uuid_matches(&id.uuid, &id.uuid.to_uppercase()));
    }
    assert!(!superblock::uuid_matches("", &id.uuid));
}

pub fn check(data: &[u8]) {
    let head = &data[..data.len().min(PROBE_BYTES)];
    let id = superblock::probe(head);
    if let Some(id) = &id {
        check_id(id);
    }
    if let Some((offset, len)) = superblock::fat_root_dir_beyond(head) {
        assert!(offset >= head.len() as u64, "root directory at {offset} is inside the {} bytes read", head.len());
        assert!((1..=PROBE_BYTES).contains(&len), "root directory length {len}");
        assert!(id.is_some(), "a FAT root directory for a head probe does not recognise");
    }
    if let Some(id) = &id {
        // The bytes boot.rs would read from `offset`: here, the input's second half.
        let mut relabelled = id.clone();
        superblock::apply_fat_root_dir_label(&mut relabelled, &data[data.len() / 2..]);
        assert_eq!((relabelled.fstype, &relabelled.uuid), (id.fstype, &id.uuid));
        if id.fstype != "vfat" {
            assert_eq!(relabelled.label, id.label);
        }
        check_id(&relabelled);
    }
    let image_head = &data[..data.len().min(4096)];
    for size in [data.len() as u64, u64::MAX, 4096] {
        if let Ok(info) = superblock::squashfs_sane(image_head, size) {
            assert!((96..=size).contains(&info.bytes_used), "bytes_used {} for a file of {size}", info.bytes_used);
            assert!(info.block_size.is_power_of_two() && (4096..=1 << 20).contains(&info.block_size));
            assert!(["gzip", "lzma", "lzo", "xz", "lz4", "zstd"].contains(&info.compression));
            assert_eq!(superblock::probe(image_head).map(|i| i.fstype), Some("squashfs"), "sane squashfs not probed as squashfs");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn garbage_and_short_inputs() {
        super::check(&[]);
        super::check(b"hsqs");
        super::check(&[0xff; 2048]);
    }
}

#[cfg(test)]
mod seeds {
    use autoinit::superblock;

    /// The seeds are what their names say, so the fuzzer starts from real filesystems.
    #[test]
    fn seeds_are_recognised() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/superblock");
        let mut labels = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let id = superblock::probe(&std::fs::read(&p).unwrap()).unwrap_or_else(|| panic!("{name} not recognised"));
            let want = if name.starts_with("fat") { "vfat" } else { &name };
            assert_eq!(id.fstype, want, "{name}");
            labels.push((name, id.label.to_string()));
        }
        labels.sort();
        assert!(labels.contains(&("fat12".into(), "BOOT".into())), "{labels:?}");
        assert!(labels.contains(&("fat16".into(), "MY DISK".into())), "{labels:?}");
        assert!(labels.contains(&("ext4".into(), "root-ext4".into())), "{labels:?}");
    }
}
