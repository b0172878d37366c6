//! Mount options as a user writes them (`ro,noatime,uid=1000`): split into mount(2) flags and
//! the filesystem's own data string (pure, host-tested).

use syscall::mount::MountFlags;

/// Longest data string passed to the filesystem.
pub const DATA_BYTES: usize = 256;

/// Flags and the NUL-terminated data string.
pub struct Options {
    pub flags: MountFlags,
    data: [u8; DATA_BYTES],
    len: usize,
}

impl Options {
    /// The filesystem-specific options, or `None` if there are none.
    pub fn data(&self) -> Option<&core::ffi::CStr> {
        if self.len == 0 {
            return None;
        }
        core::ffi::CStr::from_bytes_with_nul(self.data.get(..=self.len)?).ok()
    }
}

/// Parses `opts`; `Err` names the problem. `defaults` is accepted and means nothing.
pub fn parse(opts: &str) -> Result<Options, &'static str> {
    let mut o = Options { flags: MountFlags::EMPTY, data: [0; DATA_BYTES], len: 0 };
    for opt in opts.split(',') {
        let (set, clear) = match opt {
            "" | "defaults" => continue,
            "ro" => (MountFlags::RDONLY, MountFlags::EMPTY),
            "rw" => (MountFlags::EMPTY, MountFlags::RDONLY),
            "nosuid" => (MountFlags::NOSUID, MountFlags::EMPTY),
            "suid" => (MountFlags::EMPTY, MountFlags::NOSUID),
            "nodev" => (MountFlags::NODEV, MountFlags::EMPTY),
            "dev" => (MountFlags::EMPTY, MountFlags::NODEV),
            "noexec" => (MountFlags::NOEXEC, MountFlags::EMPTY),
            "exec" => (MountFlags::EMPTY, MountFlags::NOEXEC),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::EMPTY),
            "async" => (MountFlags::EMPTY, MountFlags::SYNCHRONOUS),
            "noatime" => (MountFlags::NOATIME, MountFlags::EMPTY),
            "atime" => (MountFlags::EMPTY, MountFlags::NOATIME),
            "lazytime" => (MountFlags::LAZYTIME, MountFlags::EMPTY),
            other => {
                if other.bytes().any(|b| b == 0) {
                    return Err("NUL byte in mount options");
                }
                let sep = usize::from(o.len > 0);
                if o.len + sep + other.len() >= DATA_BYTES {
                    return Err("mount options too long");
                }
                for &b in b",".iter().take(sep).chain(other.as_bytes()) {
                    if let Some(slot) = o.data.get_mut(o.len) {
                        *slot = b;
                        o.len += 1;
                    }
                }
                continue;
            }
        };
        o.flags = MountFlags((o.flags.bits() | set.bits()) & !clear.bits());
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_from_data() {
        let o = parse("ro,noatime,uid=1000,utf8").unwrap();
        assert!(o.flags.contains(MountFlags::RDONLY | MountFlags::NOATIME));
        assert_eq!(o.data().unwrap().to_bytes(), b"uid=1000,utf8");
        let o = parse("ro,rw,defaults").unwrap();
        assert_eq!(o.flags, MountFlags::EMPTY);
        assert!(o.data().is_none());
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert!(parse(&"x".repeat(300)).is_err());
        assert!(parse("a\0b").is_err());
    }
}
