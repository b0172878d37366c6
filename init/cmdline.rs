//! The kernel command line: split it as the kernel does and validate every `autoinit.*` key.
//!
//! Pure code (no syscalls), unit-tested on the host. A bad key is never fatal: it becomes a
//! [`Warning`] naming the key, and the setting keeps its default.

use heapless::Vec;

/// How many warnings are kept; more are counted in [`Parsed::dropped_warnings`].
pub const MAX_WARNINGS: usize = 16;
/// How many modules `autoinit.modules=` may list.
pub const MAX_MODULES: usize = 32;

/// Log verbosity (`autoinit.log=`).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum LogLevel {
    Warn,
    Info,
    Debug,
}

/// Deliberate faults for tests (`autoinit.debug=`).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DebugAction {
    /// Panic after the early mounts, to prove the panic policy.
    Panic,
}

/// A block device as the command line names it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DeviceSpec<'a> {
    Path(&'a str),
    Label(&'a str),
    Uuid(&'a str),
    PartUuid(&'a str),
    PartLabel(&'a str),
}

/// Every `autoinit.*` setting, borrowed from the command-line buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings<'a> {
    pub rescue: bool,
    pub log: LogLevel,
    pub debug: Option<DebugAction>,
    pub boot: Option<DeviceSpec<'a>>,
    pub bootfs: &'a str,
    pub bootopts: &'a str,
    pub dir: &'a str,
    pub image: &'a str,
    pub modules: Option<Vec<&'a str, MAX_MODULES>>,
    pub wait_secs: u32,
    pub safe: u8,
    pub data: Option<DeviceSpec<'a>>,
    pub datafs: &'a str,
    pub dataopts: &'a str,
    pub hostname: Option<&'a str>,
    pub init: Option<&'a str>,
    pub watchdog: Option<(&'a str, Option<u32>)>,
}

impl Default for Settings<'_> {
    fn default() -> Self {
        Settings {
            rescue: false,
            log: LogLevel::Info,
            debug: None,
            boot: None,
            bootfs: "auto",
            bootopts: "ro",
            dir: "autosvr",
            image: "system.img",
            modules: None,
            wait_secs: 10,
            safe: 0,
            data: None,
            datafs: "auto",
            dataopts: "defaults",
            hostname: None,
            init: None,
            watchdog: None,
        }
    }
}

/// A rejected `autoinit.*` parameter: the key, its value if it had one, and what is wrong.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Warning<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
    pub problem: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<'a> {
    pub settings: Settings<'a>,
    pub warnings: Vec<Warning<'a>, MAX_WARNINGS>,
    pub dropped_warnings: usize,
}

/// Splits a command line into parameters as the kernel's `next_arg` does: whitespace
/// separates, double quotes group (and are removed around a whole value or parameter).
pub fn words(cmdline: &str) -> Words<'_> {
    Words { rest: cmdline }
}

pub struct Words<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Words<'a> {
    /// (key, value): `value` is None for a parameter without '='.
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        let mut in_quote = false;
        let mut end = s.len();
        // Bytes, not chars: every separator is ASCII, and no byte of a multi-byte UTF-8
        // character is, so `end` is a char boundary; decoding each char cost a third of a
        // parse.
        for (i, &c) in s.as_bytes().iter().enumerate() {
            if c == b'"' {
                in_quote = !in_quote;
            } else if !in_quote && (c.is_ascii_whitespace() || c == 0) {
                end = i;
                break;
            }
        }
        let word = s.get(..end).unwrap_or("");
        self.rest = s.get(end..).unwrap_or("");
        let unquote = |w: &'a str| -> &'a str {
            w.strip_prefix('"').map(|w| w.strip_suffix('"').unwrap_or(w)).unwrap_or(w)
        };
        let word = unquote(word);
        Some(match word.split_once('=') {
            Some((k, v)) => (k.trim_end_matches('"'), Some(unquote(v))),
            None => (word, None),
        })
    }
}

/// The original Autoserver's kernel environment variables and the keys they stand for.
pub const LEGACY: &[(&str, &str)] = &[
    ("autoserver_boot_dev", "autoinit.boot"),
    ("autoserver_boot_fstype", "autoinit.bootfs"),
    ("autoserver_boot_opts", "autoinit.bootopts"),
    ("autoserver_dir", "autoinit.dir"),
    ("autoserver_safe_mode", "autoinit.safe"),
    ("autoserver_init", "autoinit.init"),
];

/// Writes the legacy variables found in `env` (`NAME=value` entries) as `autoinit.*`
/// parameters into `out`, to be parsed *before* the real command line so that an
/// `autoinit.*` key given there wins. Returns the bytes written; variables that do not fit
/// are left out.
pub fn legacy_params<'e>(env: impl Iterator<Item = &'e [u8]>, out: &mut [u8]) -> usize {
    let mut len = 0;
    for entry in env {
        let Ok(entry) = core::str::from_utf8(entry) else { continue };
        let Some((name, value)) = entry.split_once('=') else { continue };
        let Some((_, key)) = LEGACY.iter().find(|(legacy, _)| *legacy == name) else { continue };
        if value.contains('"') {
            continue;
        }
        let parts: [&[u8]; 5] = [key.as_bytes(), b"=\"", value.as_bytes(), b"\"", b" "];
        let need: usize = parts.iter().map(|p| p.len()).sum();
        if len + need > out.len() {
            break;
        }
        for p in parts {
            for &b in p {
                if let Some(slot) = out.get_mut(len) {
                    *slot = b;
                    len += 1;
                }
            }
        }
    }
    len
}

/// Parses every `autoinit.*` parameter of `cmdline`; other parameters are the kernel's.
/// A key given twice takes the last value, as the kernel does.
pub fn parse(cmdline: &str) -> Parsed<'_> {
    let mut p = Parsed { settings: Settings::default(), warnings: Vec::new(), dropped_warnings: 0 };
    for (key, value) in words(cmdline) {
        let Some(name) = key.strip_prefix("autoinit.") else { continue };
        if let Err(problem) = apply(&mut p.settings, name, value) {
            if p.warnings.push(Warning { key, value, problem }).is_err() {
                p.dropped_warnings += 1;
            }
        }
    }
    p
}

fn apply<'a>(s: &mut Settings<'a>, name: &str, value: Option<&'a str>) -> Result<(), &'static str> {
    // Values end up in paths, mount options and log lines: no control characters (a
    // terminal escape in a log line, a newline in a path).
    if value.is_some_and(|v| v.bytes().any(|b| b.is_ascii_control())) {
        return Err("control character in the value");
    }
    // Every key but the flags needs a value.
    let need = || value.filter(|v| !v.is_empty()).ok_or("missing value");
    match name {
        "rescue" => s.rescue = parse_bool(value)?,
        "log" => {
            s.log = match need()? {
                "debug" => LogLevel::Debug,
                "info" => LogLevel::Info,
                "warn" => LogLevel::Warn,
                _ => return Err("expected debug, info or warn"),
            }
        }
        "debug" => {
            s.debug = match need()? {
                "panic" => Some(DebugAction::Panic),
                _ => return Err("expected panic"),
            }
        }
        "boot" => s.boot = Some(device(need()?)?),
        "data" => s.data = Some(device(need()?)?),
        "bootfs" => s.bootfs = fstype(need()?)?,
        "datafs" => s.datafs = fstype(need()?)?,
        "bootopts" => s.bootopts = mount_options(need()?)?,
        "dataopts" => s.dataopts = mount_options(need()?)?,
        "dir" => s.dir = relative_path(need()?)?,
        "image" => s.image = file_name(need()?)?,
        "modules" => s.modules = Some(modules(need()?)?),
        "wait" => s.wait_secs = number(need()?, 3600).ok_or("expected seconds from 0 to 3600")?,
        "safe" => {
            s.safe = match need()? {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                _ => return Err("expected 0, 1 or 2"),
            }
        }
        "hostname" => s.hostname = Some(hostname(need()?)?),
        "init" => {
            let v = need()?;
            if !v.starts_with('/') {
                return Err("expected an absolute path");
            }
            s.init = Some(v);
        }
        "watchdog" => s.watchdog = Some(watchdog(need()?)?),
        _ => return Err("unknown key"),
    }
    Ok(())
}

fn parse_bool(value: Option<&str>) -> Result<bool, &'static str> {
    match value {
        None | Some("1" | "yes" | "true" | "on") => Ok(true),
        Some("0" | "no" | "false" | "off") => Ok(false),
        Some(_) => Err("expected no value, or 1/0, yes/no, true/false, on/off"),
    }
}

/// Decimal number up to `max`.
pub fn number(v: &str, max: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = v.bytes().try_fold(0u64, |n, b| n.checked_mul(10)?.checked_add((b - b'0') as u64))?;
    if n > max as u64 { None } else { Some(n as u32) }
}

fn device(v: &str) -> Result<DeviceSpec<'_>, &'static str> {
    let nonempty = |x: &'static str| move |s: &str| if s.is_empty() { Err(x) } else { Ok(()) };
    let spec = if let Some(rest) = v.strip_prefix("LABEL=") {
        nonempty("empty LABEL=")(rest)?;
        DeviceSpec::Label(rest)
    } else if let Some(rest) = v.strip_prefix("UUID=") {
        nonempty("empty UUID=")(rest)?;
        DeviceSpec::Uuid(rest)
    } else if let Some(rest) = v.strip_prefix("PARTUUID=") {
        nonempty("empty PARTUUID=")(rest)?;
        DeviceSpec::PartUuid(rest)
    } else if let Some(rest) = v.strip_prefix("PARTLABEL=") {
        nonempty("empty PARTLABEL=")(rest)?;
        DeviceSpec::PartLabel(rest)
    } else if let Some(rest) = v.strip_prefix("/dev/") {
        if rest.is_empty() || rest.split('/').any(|c| c.is_empty() || c == "..") {
            return Err("expected /dev/NAME");
        }
        DeviceSpec::Path(v)
    } else {
        return Err("expected /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=");
    };
    Ok(spec)
}

fn fstype(v: &str) -> Result<&str, &'static str> {
    if v.len() <= 32 && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.') {
        Ok(v)
    } else {
        Err("expected auto or a filesystem name such as vfat or ext4")
    }
}

fn mount_options(v: &str) -> Result<&str, &'static str> {
    if v.len() <= 256 && !v.starts_with(',') && !v.ends_with(',') && !v.contains(",,") {
        Ok(v)
    } else {
        Err("expected comma-separated mount options")
    }
}

/// A path relative to the boot device's root that cannot leave it.
fn relative_path(v: &str) -> Result<&str, &'static str> {
    if v.starts_with('/') || v.len() > 255 || v.split('/').any(|c| c.is_empty() || c == "..") {
        Err("expected a relative path without '..' or empty components")
    } else {
        Ok(v)
    }
}

fn file_name(v: &str) -> Result<&str, &'static str> {
    if v.contains('/') || v == "." || v == ".." || v.len() > 255 {
        Err("expected a file name without '/'")
    } else {
        Ok(v)
    }
}

fn modules(v: &str) -> Result<Vec<&str, MAX_MODULES>, &'static str> {
    let mut out = Vec::new();
    for m in v.split(',') {
        if m.is_empty() || m.len() > 64 || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err("expected a comma list of module names");
        }
        out.push(m).map_err(|_| "more than 32 modules")?;
    }
    Ok(out)
}

fn hostname(v: &str) -> Result<&str, &'static str> {
    let ok = v.len() <= 64
        && !v.starts_with('-')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok { Ok(v) } else { Err("expected up to 64 letters, digits, '-' and '.'") }
}

fn watchdog(v: &str) -> Result<(&str, Option<u32>), &'static str> {
    let (dev, secs) = match v.split_once(',') {
        Some((d, s)) => (d, Some(number(s, 3600).filter(|&n| n > 0).ok_or("expected seconds from 1 to 3600 after ','")?)),
        None => (v, None),
    };
    match dev.strip_prefix("/dev/watchdog") {
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => Ok((dev, secs)),
        _ => Err("expected /dev/watchdogN[,SECONDS]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings<'a>(p: &Parsed<'a>) -> std::vec::Vec<(&'a str, &'static str)> {
        p.warnings.iter().map(|w| (w.key, w.problem)).collect()
    }

    #[test]
    fn splits_like_the_kernel() {
        let w: std::vec::Vec<_> = words("  ro console=ttyS0,115200 \"autoinit.hostname=a b\" x=\"1 2\"\n").collect();
        assert_eq!(w, [("ro", None), ("console", Some("ttyS0,115200")), ("autoinit.hostname", Some("a b")), ("x", Some("1 2"))]);
    }

    #[test]
    fn defaults_without_keys() {
        let p = parse("console=ttyS0 quiet panic=-1");
        assert_eq!(p.settings, Settings::default());
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn reads_every_key() {
        let p = parse(
            "autoinit.rescue autoinit.log=debug autoinit.boot=PARTUUID=1234abcd-01 autoinit.bootfs=vfat \
             autoinit.bootopts=ro,noatime autoinit.dir=images/v2 autoinit.image=sys.img \
             autoinit.modules=loop,squashfs,virtio_blk autoinit.wait=30 autoinit.safe=2 \
             autoinit.data=LABEL=DATA autoinit.datafs=ext4 autoinit.dataopts=rw autoinit.hostname=board-1 \
             autoinit.init=/sbin/init autoinit.watchdog=/dev/watchdog0,15 autoinit.debug=panic",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let s = &p.settings;
        assert!(s.rescue);
        assert_eq!(s.log, LogLevel::Debug);
        assert_eq!(s.boot, Some(DeviceSpec::PartUuid("1234abcd-01")));
        assert_eq!(s.bootfs, "vfat");
        assert_eq!(s.bootopts, "ro,noatime");
        assert_eq!(s.dir, "images/v2");
        assert_eq!(s.image, "sys.img");
        assert_eq!(s.modules.as_ref().map(|m| m.as_slice()), Some(&["loop", "squashfs", "virtio_blk"][..]));
        assert_eq!(s.wait_secs, 30);
        assert_eq!(s.safe, 2);
        assert_eq!(s.data, Some(DeviceSpec::Label("DATA")));
        assert_eq!(s.datafs, "ext4");
        assert_eq!(s.hostname, Some("board-1"));
        assert_eq!(s.init, Some("/sbin/init"));
        assert_eq!(s.watchdog, Some(("/dev/watchdog0", Some(15))));
        assert_eq!(s.debug, Some(DebugAction::Panic));
    }

    #[test]
    fn bad_keys_are_warnings_that_name_them() {
        let p = parse(
            "autoinit.bogus=1 autoinit.log=loud autoinit.wait=forever autoinit.safe=3 autoinit.dir=../x \
             autoinit.boot=sda1 autoinit.rescue=maybe autoinit.init=sbin/init autoinit.modules=a,,b \
             autoinit.watchdog=/dev/wd autoinit.image autoinit.hostname=-x",
        );
        assert_eq!(
            warnings(&p),
            [
                ("autoinit.bogus", "unknown key"),
                ("autoinit.log", "expected debug, info or warn"),
                ("autoinit.wait", "expected seconds from 0 to 3600"),
                ("autoinit.safe", "expected 0, 1 or 2"),
                ("autoinit.dir", "expected a relative path without '..' or empty components"),
                ("autoinit.boot", "expected /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL="),
                ("autoinit.rescue", "expected no value, or 1/0, yes/no, true/false, on/off"),
                ("autoinit.init", "expected an absolute path"),
                ("autoinit.modules", "expected a comma list of module names"),
                ("autoinit.watchdog", "expected /dev/watchdogN[,SECONDS]"),
                ("autoinit.image", "missing value"),
                ("autoinit.hostname", "expected up to 64 letters, digits, '-' and '.'"),
            ]
        );
        // Bad values leave the defaults in place.
        assert_eq!(p.settings, Settings::default());
        assert_eq!(p.warnings[1].value, Some("loud"));
    }

    #[test]
    fn last_value_wins_and_flags_can_be_turned_off() {
        let p = parse("autoinit.log=debug autoinit.log=warn autoinit.rescue autoinit.rescue=0");
        assert_eq!(p.settings.log, LogLevel::Warn);
        assert!(!p.settings.rescue);
    }

    #[test]
    fn too_many_warnings_are_counted_not_lost() {
        let mut line = std::string::String::new();
        for i in 0..40 {
            line.push_str(&std::format!("autoinit.k{i}=1 "));
        }
        let p = parse(&line);
        assert_eq!(p.warnings.len(), MAX_WARNINGS);
        assert_eq!(p.dropped_warnings, 40 - MAX_WARNINGS);
    }

    #[test]
    fn legacy_variables_become_keys_and_lose_to_real_ones() {
        let env: [&[u8]; 4] = [b"HOME=/", b"autoserver_boot_dev=LABEL=OLD DISK", b"autoserver_safe_mode=1", b"autoserver_dir=images"];
        let mut buf = [0u8; 512];
        let n = legacy_params(env.into_iter(), &mut buf);
        let mut line = std::string::String::from(core::str::from_utf8(&buf[..n]).unwrap());
        line.push_str("console=ttyS0 autoinit.dir=autosvr");
        let p = parse(&line);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.settings.boot, Some(DeviceSpec::Label("OLD DISK")));
        assert_eq!(p.settings.safe, 1);
        assert_eq!(p.settings.dir, "autosvr");
    }

    #[test]
    fn control_characters_in_values_are_refused() {
        for key in ["dir", "image", "init", "boot", "bootopts", "hostname"] {
            let line = std::format!("autoinit.{key}=a\x1b[2Jb autoinit.log=debug");
            let p = parse(&line);
            let full = std::format!("autoinit.{key}");
            assert_eq!(warnings(&p), [(full.as_str(), "control character in the value")], "{key}");
            assert_eq!(p.settings.log, LogLevel::Debug, "the other keys still apply");
        }
        let p = parse(r"autoinit.image=sys\tem.img");
        assert_eq!(p.settings.image, r"sys\tem.img", "a backslash is not a control character");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in ["\"", "autoinit.", "autoinit.=", "\"autoinit.log=debug", "autoinit.log=\"", "=\"=\"", "autoinit.wait=99999999999999999999", "\u{0}autoinit.rescue\u{0}", "autoinit.modules=ä"] {
            let _ = parse(s);
        }
        assert_eq!(number("4294967296", u32::MAX), None);
        assert_eq!(number("3600", 3600), Some(3600));
    }
}
