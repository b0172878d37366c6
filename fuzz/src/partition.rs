//! MBR and GPT: `partition::partitions`, `describe`, `find` and `bytes_needed` on the first
//! bytes of a disk, as boot.rs reads them (`DISK_HEAD_BYTES` normally; the input may be
//! shorter or longer).
//!
//! Invariants: partition numbers rise strictly, 1-4 on an MBR; ids have their text form
//! (`xxxxxxxx-NN` on an MBR, a lower-case GUID on a GPT), labels only on a GPT and within
//! `PARTLABEL_MAX`; `describe(n)` gives what the iteration gave for n; `find` by PARTUUID
//! (in either case) and by a label that fitted finds a partition with those ids; a GPT
//! that was read needs no more bytes than were given (`bytes_needed`).

use autoinit::partition::{self, Scheme, Want, PARTLABEL_MAX};

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn check(data: &[u8]) {
    let needed = partition::bytes_needed(data);
    let Ok(parts) = partition::partitions(data) else {
        return;
    };
    let scheme = parts.scheme();
    if scheme == Scheme::Gpt {
        let n = needed.expect("a GPT was read but bytes_needed has no answer");
        assert!(n <= data.len(), "GPT read from {} bytes needs {n}", data.len());
    }
    let all: Vec<_> = parts.collect();
    let mut last = 0;
    for (n, ids) in &all {
        assert!(*n > last, "partition numbers do not rise: {n} after {last}");
        last = *n;
        assert!(ids.partlabel.len() <= PARTLABEL_MAX);
        match scheme {
            Scheme::Mbr => {
                assert!((1..=4).contains(n));
                let (sig, num) = ids.partuuid.split_once('-').expect("MBR PARTUUID has a '-'");
                assert!(sig.len() == 8 && is_hex(sig) && num == format!("{n:02x}"), "MBR PARTUUID {}", ids.partuuid);
                assert!(ids.partlabel.is_empty());
            }
            Scheme::Gpt => {
                let groups: Vec<&str> = ids.partuuid.split('-').collect();
                let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
                assert!(lens == [8, 4, 4, 4, 12] && groups.iter().all(|g| is_hex(g)), "GPT PARTUUID {}", ids.partuuid);
            }
        }
        assert_eq!(partition::describe(data, *n).as_ref(), Some(ids), "describe({n})");
        for uuid in [ids.partuuid.to_string(), ids.partuuid.to_uppercase()] {
            let found = partition::find(data, &Want::PartUuid(&uuid)).expect("find by PARTUUID");
            let (_, hit) = all.iter().find(|(m, _)| *m == found).expect("find gave a listed partition");
            assert!(hit.partuuid.eq_ignore_ascii_case(&uuid));
            assert!(found <= *n, "find did not give the first match");
        }
        // A label that fitted PARTLABEL_MAX is the whole name (a cut one ends short of it).
        if !ids.partlabel.is_empty() && ids.partlabel.len() + 3 < PARTLABEL_MAX {
            let found = partition::find(data, &Want::PartLabel(&ids.partlabel)).expect("find by PARTLABEL");
            assert!(found <= *n);
            assert!(ids.matches(&Want::PartLabel(&ids.partlabel)));
        }
    }
    if scheme == Scheme::Mbr {
        assert!(all.len() <= 4);
    }
    assert_eq!(partition::describe(data, 0), None);
    assert_eq!(partition::describe(data, last.saturating_add(1)), None);
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_mbr_with_one_partition() {
        let mut mbr = vec![0u8; 512];
        mbr[440..444].copy_from_slice(&0x1234abcdu32.to_le_bytes());
        mbr[446 + 4] = 0x83;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        mbr[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        assert_eq!(autoinit::partition::find(&mbr, &autoinit::partition::Want::PartUuid("1234ABCD-01")), Some(1));
        super::check(&mbr);
    }
}

#[cfg(test)]
mod seeds {
    use autoinit::partition::{self, Scheme};

    #[test]
    fn seeds_are_recognised() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/partition");
        for (name, scheme, count) in [("mbr", Scheme::Mbr, 2), ("gpt", Scheme::Gpt, 3), ("gpt-4-entries", Scheme::Gpt, 2), ("gpt-4k-sectors", Scheme::Gpt, 2)] {
            let data = std::fs::read(dir.join(name)).unwrap();
            let p = partition::partitions(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.scheme(), scheme, "{name}");
            assert_eq!(p.count(), count, "{name}");
        }
    }
}
