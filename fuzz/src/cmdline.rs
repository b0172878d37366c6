//! The kernel command line: `cmdline::parse` on what pid1.rs keeps of /proc/cmdline (at most
//! `CMDLINE_BYTES`, its UTF-8 prefix).
//!
//! Invariants: every accepted setting obeys its documented rule (no `..` in a device path or
//! `autoinit.dir`, no '/' in `autoinit.image`, at most `MAX_MODULES` modules, ...); keys and
//! values are borrowed from the input; warnings never exceed `MAX_WARNINGS` and stand for
//! `autoinit.*` parameters; and parse-print-parse is the identity: the settings printed back
//! as a command line parse to the same settings, without warnings.

use crate::{borrowed_from, utf8_prefix};
use autoinit::cmdline::{self, DebugAction, DeviceSpec, LogLevel, Settings, MAX_MODULES, MAX_WARNINGS};
use autoinit::pid1::CMDLINE_BYTES;
use std::fmt::Write;

pub fn check(data: &[u8]) {
    let text = utf8_prefix(&data[..data.len().min(CMDLINE_BYTES)]);
    check_line(text);
}

/// The checks on one command line (also used by the legacy_env target).
pub fn check_line(text: &str) {
    let mut keys = 0;
    for (key, value) in cmdline::words(text) {
        assert!(borrowed_from(key, text), "key {key:?} not from the input");
        if let Some(v) = value {
            assert!(borrowed_from(v, text), "value {v:?} not from the input");
            check_number(v);
        }
        keys += usize::from(key.starts_with("autoinit."));
    }
    let p = cmdline::parse(text);
    assert!(p.warnings.len() <= MAX_WARNINGS);
    assert!(p.dropped_warnings == 0 || p.warnings.len() == MAX_WARNINGS, "warnings dropped before the table was full");
    assert!(p.warnings.len() + p.dropped_warnings <= keys, "more warnings than autoinit.* parameters");
    for w in &p.warnings {
        assert!(w.key.starts_with("autoinit.") && borrowed_from(w.key, text), "warning key {:?}", w.key);
        assert!(w.value.is_none_or(|v| borrowed_from(v, text)));
        assert!(!w.problem.is_empty());
    }
    check_settings(&p.settings);
    if let Some(line) = print(&p.settings) {
        let again = cmdline::parse(&line);
        assert!(again.warnings.is_empty(), "printed settings {line:?} gave warnings {:?}", again.warnings);
        assert_eq!(again.settings, p.settings, "parse-print-parse changed the settings (printed: {line:?})");
    }
}

/// `cmdline::number` accepts exactly 1 to 10 decimal digits whose value is at most `max`.
fn check_number(v: &str) {
    for max in [15, 3600, u32::MAX] {
        let expected = if (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<u64>().ok().filter(|&n| n <= u64::from(max)).map(|n| n as u32)
        } else {
            None
        };
        assert_eq!(cmdline::number(v, max), expected, "number({v:?}, {max})");
    }
}

fn check_device(d: &DeviceSpec<'_>) {
    match *d {
        DeviceSpec::Path(p) => {
            let name = p.strip_prefix("/dev/").expect("a device path starts with /dev/");
            assert!(name.split('/').all(|c| !c.is_empty() && c != ".."), "device path {p:?} can leave /dev");
        }
        DeviceSpec::Label(v) | DeviceSpec::Uuid(v) | DeviceSpec::PartUuid(v) | DeviceSpec::PartLabel(v) => {
            assert!(!v.is_empty())
        }
    }
}

/// Every setting obeys the rule docs/cmdline.md gives for it.
pub fn check_settings(s: &Settings<'_>) {
    if let Some(d) = &s.boot {
        check_device(d);
    }
    if let Some(d) = &s.data {
        check_device(d);
    }
    for fs in [s.bootfs, s.datafs] {
        assert!(fs.len() <= 32 && fs.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'), "fstype {fs:?}");
    }
    for opts in [s.bootopts, s.dataopts] {
        assert!(!opts.is_empty() && opts.len() <= 256 && !opts.starts_with(',') && !opts.ends_with(',') && !opts.contains(",,"), "options {opts:?}");
        // boot.rs hands them to mountopts::parse: it must not panic on anything accepted here.
        let _ = autoinit::mountopts::parse(opts);
    }
    assert!(
        !s.dir.starts_with('/') && s.dir.len() <= 255 && s.dir.split('/').all(|c| !c.is_empty() && c != ".."),
        "dir {:?} can leave the boot device",
        s.dir
    );
    assert!(!s.image.is_empty() && s.image.len() <= 255 && !s.image.contains('/') && s.image != "." && s.image != "..", "image {:?}", s.image);
    if let Some(m) = &s.modules {
        assert!(!m.is_empty() && m.len() <= MAX_MODULES);
        for name in m {
            assert!((1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "module {name:?}");
        }
    }
    assert!(s.wait_secs <= 3600 && s.safe <= 2);
    if let Some(h) = s.hostname {
        assert!(!h.is_empty() && h.len() <= 64 && !h.starts_with('-') && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), "hostname {h:?}");
    }
    if let Some(i) = s.init {
        assert!(i.starts_with('/'), "init {i:?}");
    }
    if let Some((dev, secs)) = s.watchdog {
        let n = dev.strip_prefix("/dev/watchdog").expect("watchdog device");
        assert!(n.bytes().all(|b| b.is_ascii_digit()));
        assert!(secs.is_none_or(|s| (1..=3600).contains(&s)));
    }
}

fn device(d: &DeviceSpec<'_>) -> String {
    match *d {
        DeviceSpec::Path(p) => p.to_string(),
        DeviceSpec::Label(v) => format!("LABEL={v}"),
        DeviceSpec::Uuid(v) => format!("UUID={v}"),
        DeviceSpec::PartUuid(v) => format!("PARTUUID={v}"),
        DeviceSpec::PartLabel(v) => format!("PARTLABEL={v}"),
    }
}

/// The settings as a command line, every value in double quotes (so spaces survive); `None`
/// if a value holds a '"', which the kernel's syntax cannot quote.
pub fn print(s: &Settings<'_>) -> Option<String> {
    let mut pairs: Vec<(&str, String)> = vec![
        ("rescue", if s.rescue { "1" } else { "0" }.into()),
        ("log", match s.log {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
        }
        .into()),
        ("bootfs", s.bootfs.into()),
        ("bootopts", s.bootopts.into()),
        ("dir", s.dir.into()),
        ("image", s.image.into()),
        ("wait", s.wait_secs.to_string()),
        ("safe", s.safe.to_string()),
        ("datafs", s.datafs.into()),
        ("dataopts", s.dataopts.into()),
    ];
    if let Some(DebugAction::Panic) = s.debug {
        pairs.push(("debug", "panic".into()));
    }
    if let Some(d) = &s.boot {
        pairs.push(("boot", device(d)));
    }
    if let Some(d) = &s.data {
        pairs.push(("data", device(d)));
    }
    if let Some(m) = &s.modules {
        pairs.push(("modules", m.join(",")));
    }
    if let Some(h) = s.hostname {
        pairs.push(("hostname", h.into()));
    }
    if let Some(i) = s.init {
        pairs.push(("init", i.into()));
    }
    if let Some((dev, secs)) = s.watchdog {
        pairs.push(("watchdog", match secs {
            Some(n) => format!("{dev},{n}"),
            None => dev.into(),
        }));
    }
    let mut line = String::from("console=ttyS0 ");
    for (key, value) in pairs {
        if value.contains('"') {
            return None;
        }
        let _ = write!(line, "autoinit.{key}=\"{value}\" ");
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_full_line() {
        let line = "autoinit.boot=\"LABEL=MY DISK\" autoinit.modules=loop,vfat autoinit.watchdog=/dev/watchdog0,15 \
                    autoinit.hostname=a.b autoinit.init=/sbin/init autoinit.dir=x/y autoinit.rescue";
        let p = cmdline::parse(line);
        assert!(p.warnings.is_empty());
        let printed = print(&p.settings).unwrap();
        assert!(printed.contains("autoinit.boot=\"LABEL=MY DISK\""), "{printed}");
        check_line(line);
        // A value with a quote cannot be printed back.
        let p = cmdline::parse("autoinit.init=/a\"b");
        assert_eq!(p.settings.init, Some("/a\"b"));
        assert!(print(&p.settings).is_none());
    }

    #[test]
    #[should_panic(expected = "can leave the boot device")]
    fn a_bad_setting_is_caught() {
        check_settings(&Settings { dir: "a/../..", ..Settings::default() });
    }
}
