//! Unit files: the subset of systemd's `.service` syntax that autoinit supports
//! (docs/units.md), parsed without allocation into a [`Unit`] that borrows the file's bytes
//! (pure, host-tested).
//!
//! Every value is checked here, when the file is read, so that a bad unit is reported with
//! its line and key and the runtime only meets units that make sense. Command lines and
//! `Environment=` are split later, at start time ([`crate::exec_line`], [`crate::env`]),
//! because `$VAR` expansion needs the service's environment.

use heapless::Vec;

/// Largest unit file; a larger one is rejected.
pub const UNIT_FILE_BYTES: usize = 8192;
/// Names per After=/Before=/Requires=/Wants= list (after dropping non-`.service` names).
pub const MAX_DEPS: usize = 16;
/// Commands per ExecStart=/ExecStartPre=/ExecStop= list.
pub const MAX_COMMANDS: usize = 8;
/// `Environment=` lines kept (each line may hold several assignments).
pub const MAX_ENV_LINES: usize = 16;
/// `EnvironmentFile=` lines kept.
pub const MAX_ENV_FILES: usize = 4;
/// Names in SupplementaryGroups=.
pub const MAX_GROUPS: usize = 16;
/// ConditionPathExists= lines kept.
pub const MAX_CONDITIONS: usize = 4;
/// Warnings kept per file; later ones are only counted in [`Parsed::dropped_warnings`].
pub const MAX_WARNINGS: usize = 8;
/// `BindPaths=`, `BindReadOnlyPaths=`, `TemporaryFileSystem=` lines kept, each (a line may hold
/// several entries; a container applies at most `container_spec::MAX_CONTAINER_MOUNTS`).
pub const MAX_MOUNT_LINES: usize = 8;
/// Longest service name, `.service` included.
pub const UNIT_NAME_BYTES: usize = 64;
/// Longest user or group name (the limit of shadow's useradd).
pub const USER_NAME_BYTES: usize = 32;

/// Default RestartSec= (systemd's).
pub const DEFAULT_RESTART_SEC_MS: u64 = 100;
/// Default TimeoutStopSec=. systemd waits 90 s; on a small board a service that ignores
/// SIGTERM for that long makes reboots look hung, so autoinit escalates to SIGKILL after 10 s.
pub const DEFAULT_TIMEOUT_STOP_MS: u64 = 10_000;
/// Default TimeoutStartSec= (systemd's): a daemon reading an SD card may well need it.
pub const DEFAULT_TIMEOUT_START_MS: u64 = 90_000;
/// SIGTERM, the default KillSignal=.
pub const SIGTERM: u32 = 15;
/// Every capability of Linux 6.x (CAP_CHOWN = 0 .. CAP_CHECKPOINT_RESTORE = 40).
pub const CAP_ALL: u64 = (1 << 41) - 1;

/// One problem, at a 1-based line of the file (0: the file as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diag<'a> {
    pub line: u32,
    pub key: Option<&'a str>,
    pub message: &'static str,
}

/// The result of [`parse`]: the unit or the error that rejects it, plus warnings.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub unit: Result<Unit<'a>, Diag<'a>>,
    pub warnings: Vec<Diag<'a>, MAX_WARNINGS>,
    /// Warnings that did not fit in `warnings`.
    pub dropped_warnings: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// `simple` and `exec`: running as soon as it is forked.
    Simple,
    /// Running until ExecStart= exits; the next units start after it.
    Oneshot,
    /// Ready when it sends `READY=1` to `$NOTIFY_SOCKET`.
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnAbort,
    OnWatchdog,
}

/// Why a service's main process ended, as far as Restart= cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// exit(code).
    Code(u8),
    /// Killed by this signal.
    Signal(u32),
    /// A start or stop timeout ran out.
    Timeout,
    Watchdog,
}

impl Exit {
    /// systemd's "clean": exit code 0 or SIGHUP, SIGINT, SIGTERM, SIGPIPE.
    pub fn is_clean(self) -> bool {
        matches!(self, Exit::Code(0) | Exit::Signal(1 | 2 | 15 | 13))
    }
}

impl Restart {
    /// Whether a service with this setting is restarted after `exit` (systemd.service(5)'s
    /// table; an explicit stop never restarts and is the caller's business).
    pub fn applies(self, exit: Exit) -> bool {
        let clean = exit.is_clean();
        match self {
            Restart::No => false,
            Restart::Always => true,
            Restart::OnSuccess => clean,
            Restart::OnFailure => !clean,
            Restart::OnAbnormal => !clean && !matches!(exit, Exit::Code(_)),
            Restart::OnAbort => !clean && matches!(exit, Exit::Signal(_)),
            Restart::OnWatchdog => exit == Exit::Watchdog,
        }
    }
}

/// ConditionPathExists=: `negate` is a leading `!`, `trigger` a leading `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition<'a> {
    pub path: &'a str,
    pub negate: bool,
    pub trigger: bool,
}

/// Whether a unit with these conditions may start: every plain condition holds and, if
/// there are trigger (`|`) conditions, at least one of them does. `exists` answers for a path
/// (after the caller expanded specifiers, if it wants them).
pub fn conditions_hold(conditions: &[Condition<'_>], exists: &dyn Fn(&str) -> bool) -> bool {
    let mut any_trigger = false;
    let mut trigger_held = false;
    for c in conditions {
        let holds = exists(c.path) != c.negate;
        if c.trigger {
            any_trigger = true;
            trigger_held |= holds;
        } else if !holds {
            return false;
        }
    }
    !any_trigger || trigger_held
}

/// One ExecStart=/ExecStartPre=/ExecStop= line. `raw` is the command after the prefixes,
/// still quoted; [`crate::exec_line::split`] turns it into argv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    pub raw: &'a str,
    /// `-`: a non-zero exit is not a failure.
    pub ignore_failure: bool,
    /// `@`: the first word is the program, the second its argv[0].
    pub argv0_override: bool,
    /// `+`, `!` or `!!`: runs as root with full privileges (User=, Group=, capability and
    /// NoNewPrivileges= settings do not apply).
    pub privileged: bool,
    /// `:`: no `$VAR` expansion.
    pub no_env_expansion: bool,
}

/// A path argument whose `-` prefix means "ignore if missing".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathArg<'a> {
    /// Absolute, or `~` (the user's home directory) for WorkingDirectory=.
    pub path: &'a str,
    pub ignore_missing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdIn {
    Null,
    /// TTYPath= (default /dev/console), made the controlling terminal.
    Tty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdOut<'a> {
    /// stdout: the same file as stdin; stderr: the same file as stdout.
    Inherit,
    Null,
    Tty,
    /// Lines to /dev/kmsg as `name[pid]: text`.
    Kmsg,
    /// /dev/console.
    Console,
    /// `file:`: opened for writing at offset 0, not truncated (systemd's semantics).
    File(&'a str),
    Append(&'a str),
    Truncate(&'a str),
}

/// `PrivatePIDs=`: a new pid namespace for the main process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivatePids {
    No,
    /// `yes`: autoinit's own small init is PID 1 inside (reaps, forwards signals) and the
    /// command runs as PID 2, as `systemd-nspawn --as-pid2`.
    Yes,
    /// `init`: the command itself is PID 1 inside: for a container's own init (systemd), as
    /// `systemd-nspawn --boot`.
    Init,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub soft: u64,
    pub hard: u64,
}

/// `RLIM_INFINITY`, what "infinity" means in Limit*=.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// A cgroup limit: MemoryMax= is `Bytes` or `Percent` of physical memory, TasksMax= is
/// `Count` or `Percent` of the kernel's pid_max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    Count(u64),
    Percent(u8),
    Infinity,
}

/// A parsed unit. Strings borrow the file's buffer. Times are milliseconds, `u64::MAX` meaning
/// infinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit<'a> {
    pub description: Option<&'a str>,
    /// Only `.service` names are kept; other unit types do not exist here (docs/units.md).
    pub after: Vec<&'a str, MAX_DEPS>,
    pub before: Vec<&'a str, MAX_DEPS>,
    pub requires: Vec<&'a str, MAX_DEPS>,
    pub wants: Vec<&'a str, MAX_DEPS>,
    pub conditions: Vec<Condition<'a>, MAX_CONDITIONS>,
    pub service_type: ServiceType,
    pub remain_after_exit: bool,
    pub exec_start: Vec<Command<'a>, MAX_COMMANDS>,
    pub exec_start_pre: Vec<Command<'a>, MAX_COMMANDS>,
    pub exec_stop: Vec<Command<'a>, MAX_COMMANDS>,
    pub restart: Restart,
    pub restart_sec_ms: u64,
    pub user: Option<&'a str>,
    pub group: Option<&'a str>,
    pub supplementary_groups: Vec<&'a str, MAX_GROUPS>,
    pub working_directory: Option<PathArg<'a>>,
    /// Raw right-hand sides, split and unquoted by [`crate::env::assignments`].
    pub environment: Vec<&'a str, MAX_ENV_LINES>,
    pub environment_files: Vec<PathArg<'a>, MAX_ENV_FILES>,
    pub stdin: StdIn,
    pub stdout: StdOut<'a>,
    pub stderr: StdOut<'a>,
    /// None: /dev/console.
    pub tty_path: Option<&'a str>,
    pub kill_signal: u32,
    pub timeout_start_ms: u64,
    pub timeout_stop_ms: u64,
    pub limit_nofile: Option<Rlimit>,
    pub limit_nproc: Option<Rlimit>,
    pub limit_core: Option<Rlimit>,
    pub nice: Option<i8>,
    pub umask: Option<u32>,
    pub no_new_privileges: bool,
    /// None: the bounding set is left alone.
    pub capability_bounding_set: Option<u64>,
    pub ambient_capabilities: u64,
    pub memory_max: Option<Limit>,
    pub tasks_max: Option<Limit>,
    pub cpu_weight: Option<u16>,
    // Containers (docs/units.md, "Containers"; runtime in container.rs).
    /// A squashfs (file or block device) mounted read-only as the root's `/rofs_root`.
    pub root_image: Option<&'a str>,
    pub root_directory: Option<&'a str>,
    pub private_mounts: bool,
    pub private_pids: PrivatePids,
    pub private_network: bool,
    pub private_users: Option<crate::container_spec::IdRange>,
    pub private_ipc: bool,
    pub hostname: Option<&'a str>,
    /// Raw values, checked at load, split by [`crate::container_spec::binds`].
    pub bind_paths: Vec<&'a str, MAX_MOUNT_LINES>,
    pub bind_read_only_paths: Vec<&'a str, MAX_MOUNT_LINES>,
    /// Raw values, split by [`crate::container_spec::tmpfs_list`].
    pub temporary_file_system: Vec<&'a str, MAX_MOUNT_LINES>,
}

impl Default for Unit<'_> {
    fn default() -> Self {
        Unit {
            description: None,
            after: Vec::new(),
            before: Vec::new(),
            requires: Vec::new(),
            wants: Vec::new(),
            conditions: Vec::new(),
            service_type: ServiceType::Simple,
            remain_after_exit: false,
            exec_start: Vec::new(),
            exec_start_pre: Vec::new(),
            exec_stop: Vec::new(),
            restart: Restart::No,
            restart_sec_ms: DEFAULT_RESTART_SEC_MS,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            working_directory: None,
            environment: Vec::new(),
            environment_files: Vec::new(),
            stdin: StdIn::Null,
            stdout: StdOut::Kmsg,
            stderr: StdOut::Inherit,
            tty_path: None,
            kill_signal: SIGTERM,
            timeout_start_ms: DEFAULT_TIMEOUT_START_MS,
            timeout_stop_ms: DEFAULT_TIMEOUT_STOP_MS,
            limit_nofile: None,
            limit_nproc: None,
            limit_core: None,
            nice: None,
            umask: None,
            no_new_privileges: false,
            capability_bounding_set: None,
            ambient_capabilities: 0,
            memory_max: None,
            tasks_max: None,
            cpu_weight: None,
            root_image: None,
            root_directory: None,
            private_mounts: false,
            private_pids: PrivatePids::No,
            private_network: false,
            private_users: None,
            private_ipc: false,
            hostname: None,
            bind_paths: Vec::new(),
            bind_read_only_paths: Vec::new(),
            temporary_file_system: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Names and specifiers

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'\\')
}

/// `prefix` or `prefix@instance`, both non-empty, of systemd's name characters.
fn valid_stem(stem: &str) -> bool {
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    let ok = |s: &str| !s.is_empty() && s.bytes().all(is_name_byte);
    ok(prefix) && instance.is_none_or(ok)
}

/// A service's file name: 1..=64 bytes of `[A-Za-z0-9:_.\-]` with at most one `@` (an
/// instance, `getty@ttyS0.service`), ending in `.service`. Templates (`getty@.service`) are
/// not valid: there is nothing to instantiate them.
pub fn valid_unit_name(name: &str) -> bool {
    name.len() <= UNIT_NAME_BYTES && name.strip_suffix(".service").is_some_and(valid_stem)
}

/// "foo.service" → "foo"; None if `file_name` is not a [`valid_unit_name`].
pub fn service_name(file_name: &str) -> Option<&str> {
    if valid_unit_name(file_name) { file_name.strip_suffix(".service") } else { None }
}

const UNIT_SUFFIXES: &[&str] = &[
    ".service", ".target", ".socket", ".mount", ".automount", ".path", ".timer", ".device",
    ".swap", ".slice", ".scope",
];

/// A dependency name: Some(true) for a service, Some(false) for another valid unit type.
fn dependency_kind(name: &str) -> Option<bool> {
    for suffix in UNIT_SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix) {
            // Other types may be long (mount units are escaped paths): only services are
            // held to UNIT_NAME_BYTES.
            let is_service = *suffix == ".service";
            // `%` is allowed for specifiers (`dev-%i.device`), expanded by the runtime.
            let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| is_name_byte(b) || b == b'%');
            let (prefix, instance) = match stem.split_once('@') {
                Some((p, i)) => (p, Some(i)),
                None => (stem, None),
            };
            let stem_ok = ok(prefix) && instance.is_none_or(ok);
            return (stem_ok && (!is_service || name.len() <= UNIT_NAME_BYTES)).then_some(is_service);
        }
    }
    None
}

/// What a supported specifier expands to. `unescape` means systemd's unit-name unescaping
/// applies (`-` → `/`, `\xNN` → byte): iterate [`SpecValue::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecValue<'n> {
    pub text: &'n str,
    pub unescape: bool,
}

impl<'n> SpecValue<'n> {
    pub fn bytes(&self) -> SpecBytes<'n> {
        SpecBytes { rest: self.text.as_bytes(), unescape: self.unescape }
    }
}

/// The bytes of a [`SpecValue`].
pub struct SpecBytes<'n> {
    rest: &'n [u8],
    unescape: bool,
}

impl Iterator for SpecBytes<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        if !self.unescape {
            return Some(b);
        }
        match b {
            b'-' => Some(b'/'),
            b'\\' => {
                if let [b'x', h, l, more @ ..] = self.rest
                    && let (Some(h), Some(l)) = (hex_digit(*h), hex_digit(*l))
                {
                    self.rest = more;
                    return Some(h << 4 | l);
                }
                Some(b'\\')
            }
            _ => Some(b),
        }
    }
}

pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The value of specifier `%c` for the unit `unit_name` ("foo@bar.service"), or None if autoinit
/// does not support it. Supported: `%n %N %p %P %i %I %%` and the system manager's fixed
/// directories `%t %S %C %L %E %T %V`.
pub fn specifier(c: u8, unit_name: &str) -> Option<SpecValue<'_>> {
    let stem = unit_name.rsplit_once('.').map_or(unit_name, |(s, _)| s);
    let (prefix, instance) = stem.split_once('@').unwrap_or((stem, ""));
    let (text, unescape) = match c {
        b'%' => ("%", false),
        b'n' => (unit_name, false),
        b'N' => (stem, false),
        b'p' => (prefix, false),
        b'P' => (prefix, true),
        b'i' => (instance, false),
        b'I' => (instance, true),
        b't' => ("/run", false),
        b'S' => ("/var/lib", false),
        b'C' => ("/var/cache", false),
        b'L' => ("/var/log", false),
        b'E' => ("/etc", false),
        b'T' => ("/tmp", false),
        b'V' => ("/var/tmp", false),
        _ => return None,
    };
    Some(SpecValue { text, unescape })
}

/// Writes `value` with its specifiers expanded into `out` and returns the written part;
/// an unsupported specifier is copied as written (the parser warned about it). None if `out`
/// is too small.
pub fn expand_specifiers<'b>(value: &str, unit_name: &str, out: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = 0usize;
    let mut put = |b: u8, out: &mut [u8]| -> Option<()> {
        *out.get_mut(len)? = b;
        len += 1;
        Some(())
    };
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            put(b, out)?;
            continue;
        }
        match bytes.next() {
            Some(c) => match specifier(c, unit_name) {
                Some(v) => {
                    for x in v.bytes() {
                        put(x, out)?;
                    }
                }
                None => {
                    put(b'%', out)?;
                    put(c, out)?;
                }
            },
            None => put(b'%', out)?,
        }
    }
    out.get(..len)
}

/// The first unsupported or incomplete specifier in `value`, as a warning message.
fn specifier_problem(value: &str) -> Option<&'static str> {
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            match bytes.next() {
                None => return Some("'%' at the end of the value (write %% for a literal %)"),
                Some(c) if specifier(c, "x.service").is_none() => {
                    return Some("unsupported % specifier, left as written");
                }
                Some(_) => {}
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Value parsers (each returns the message of a Diag)

type Res<T> = Result<T, &'static str>;

/// systemd's parse_boolean.
fn boolean(v: &str) -> Res<bool> {
    const TRUE: &[&str] = &["1", "yes", "y", "true", "t", "on"];
    const FALSE: &[&str] = &["0", "no", "n", "false", "f", "off"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(v)) {
        Ok(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(v)) {
        Ok(false)
    } else {
        Err("expected a boolean (yes/no, true/false, on/off, 1/0)")
    }
}

fn decimal_u64(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.bytes().try_fold(0u64, |acc, b| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

/// A number with an optional fraction, times `unit`, as u128 (floors the fraction).
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let mut total = 0u128;
    for b in int.bytes() {
        total = total.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    total = total.checked_mul(unit)?;
    let mut numer = 0u128;
    let mut denom = 1u128;
    for b in frac.bytes() {
        numer = numer * 10 + u128::from(b - b'0');
        denom *= 10;
    }
    total.checked_add(numer.checked_mul(unit)? / denom)
}

const US_PER_SEC: u128 = 1_000_000;
/// systemd's time units, in microseconds. Longest names first is not needed: the unit is
/// matched as a whole word.
const TIME_UNITS: &[(&str, u128)] = &[
    ("", US_PER_SEC),
    ("usec", 1),
    ("us", 1),
    ("µs", 1),
    ("μs", 1),
    ("msec", 1000),
    ("ms", 1000),
    ("seconds", US_PER_SEC),
    ("second", US_PER_SEC),
    ("sec", US_PER_SEC),
    ("s", US_PER_SEC),
    ("minutes", 60 * US_PER_SEC),
    ("minute", 60 * US_PER_SEC),
    ("min", 60 * US_PER_SEC),
    ("m", 60 * US_PER_SEC),
    ("hours", 3600 * US_PER_SEC),
    ("hour", 3600 * US_PER_SEC),
    ("hr", 3600 * US_PER_SEC),
    ("h", 3600 * US_PER_SEC),
    ("days", 86400 * US_PER_SEC),
    ("day", 86400 * US_PER_SEC),
    ("d", 86400 * US_PER_SEC),
    ("weeks", 604_800 * US_PER_SEC),
    ("week", 604_800 * US_PER_SEC),
    ("w", 604_800 * US_PER_SEC),
    ("months", 2_629_800 * US_PER_SEC),
    ("month", 2_629_800 * US_PER_SEC),
    ("M", 2_629_800 * US_PER_SEC),
    ("years", 31_557_600 * US_PER_SEC),
    ("year", 31_557_600 * US_PER_SEC),
    ("y", 31_557_600 * US_PER_SEC),
];

/// A systemd time span ("5", "5s", "500ms", "1min 30s", "2h30m", "1.5s", "infinity") in
/// milliseconds, rounded up so that a non-zero span stays non-zero. "infinity" is u64::MAX.
pub fn timespan_ms(v: &str) -> Res<u64> {
    const BAD: &str = "expected a time span (\"5\", \"500ms\", \"1min 30s\", \"infinity\")";
    if v == "infinity" {
        return Ok(u64::MAX);
    }
    let mut rest = v.trim_start();
    if rest.is_empty() {
        return Err(BAD);
    }
    let mut total_us = 0u128;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at_checked(num_len).ok_or(BAD)?;
        let after = after.trim_start();
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace()).unwrap_or(after.len());
        let (unit, after) = after.split_at_checked(unit_len).ok_or(BAD)?;
        let mult = TIME_UNITS.iter().find(|(name, _)| *name == unit).map(|(_, m)| *m).ok_or(BAD)?;
        let us = scaled(number, mult).ok_or(BAD)?;
        total_us = total_us.checked_add(us).ok_or("time span too large")?;
        rest = after.trim_start();
    }
    let ms = total_us.div_ceil(1000);
    u64::try_from(ms).ok().filter(|&ms| ms != u64::MAX).ok_or("time span too large")
}

/// A size with an optional 1024-based K/M/G/T/P/E suffix (and optional B), as systemd's
/// parse_size; fractions allowed ("1.5G").
fn size_bytes(v: &str) -> Option<u64> {
    let v = v.strip_suffix('B').unwrap_or(v).trim_end();
    let (number, shift) = match v.as_bytes().last() {
        Some(b'K') => (v.get(..v.len() - 1)?, 10),
        Some(b'M') => (v.get(..v.len() - 1)?, 20),
        Some(b'G') => (v.get(..v.len() - 1)?, 30),
        Some(b'T') => (v.get(..v.len() - 1)?, 40),
        Some(b'P') => (v.get(..v.len() - 1)?, 50),
        Some(b'E') => (v.get(..v.len() - 1)?, 60),
        _ => (v, 0),
    };
    u64::try_from(scaled(number.trim_end(), 1u128 << shift)?).ok()
}

/// "N%" with N in 0..=100.
fn percent(v: &str) -> Option<Res<u8>> {
    let n = v.strip_suffix('%')?;
    Some(match decimal_u64(n) {
        Some(p) if p <= 100 => Ok(p as u8),
        _ => Err("expected a whole percentage 0%..100%"),
    })
}

fn rlimit(v: &str, sizes: bool) -> Res<Rlimit> {
    let one = |s: &str| -> Res<u64> {
        if s == "infinity" {
            return Ok(RLIM_INFINITY);
        }
        let n = if sizes { size_bytes(s) } else { decimal_u64(s) };
        n.ok_or(if sizes {
            "expected N, SOFT:HARD or infinity (sizes may end in K, M, G, T)"
        } else {
            "expected N, SOFT:HARD or infinity"
        })
    };
    let (soft, hard) = match v.split_once(':') {
        Some((s, h)) => (one(s)?, one(h)?),
        None => {
            let n = one(v)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err("soft limit above the hard limit");
    }
    Ok(Rlimit { soft, hard })
}

/// Linux signal numbers shared by x86, arm, riscv (not mips, alpha or sparc).
const SIGNALS: &[(&str, u32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// "SIGTERM", "TERM" or "15" → 15. Numbers 1..=64 are accepted as they are.
pub fn signal_number(v: &str) -> Option<u32> {
    if let Some(n) = decimal_u64(v) {
        return (1..=64).contains(&n).then_some(n as u32);
    }
    let name = v.strip_prefix("SIG").unwrap_or(v);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Capability names in number order, without the `CAP_` prefix.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `CAP_NET_RAW` (any case) or a number 0..=40 → its bit number.
pub fn capability_number(name: &str) -> Option<u32> {
    if let Some(n) = decimal_u64(name) {
        return (n < CAPABILITIES.len() as u64).then_some(n as u32);
    }
    let bare = name.get(..4).filter(|p| p.eq_ignore_ascii_case("CAP_")).and_then(|_| name.get(4..))?;
    CAPABILITIES.iter().position(|c| c.eq_ignore_ascii_case(bare)).map(|i| i as u32)
}

/// A user or group name as shadow's useradd accepts it, or a numeric id.
fn valid_user_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= USER_NAME_BYTES
        && !v.starts_with('-')
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

fn absolute(v: &str) -> Res<&str> {
    if v.starts_with('/') { Ok(v) } else { Err("expected an absolute path") }
}

fn path_arg(v: &str, allow_home: bool) -> Res<PathArg<'_>> {
    let (path, ignore_missing) = match v.strip_prefix('-') {
        Some(p) => (p, true),
        None => (v, false),
    };
    if allow_home && path == "~" {
        return Ok(PathArg { path, ignore_missing });
    }
    absolute(path).map(|path| PathArg { path, ignore_missing })
}

fn std_out(v: &str) -> Res<StdOut<'_>> {
    Ok(match v {
        "inherit" => StdOut::Inherit,
        "null" => StdOut::Null,
        "tty" => StdOut::Tty,
        "kmsg" | "journal" | "syslog" | "kmsg+console" | "journal+console" | "syslog+console" => StdOut::Kmsg,
        "console" => StdOut::Console,
        _ => {
            if let Some(p) = v.strip_prefix("file:") {
                StdOut::File(absolute(p)?)
            } else if let Some(p) = v.strip_prefix("append:") {
                StdOut::Append(absolute(p)?)
            } else if let Some(p) = v.strip_prefix("truncate:") {
                StdOut::Truncate(absolute(p)?)
            } else {
                return Err("expected inherit, null, tty, kmsg, journal, console, file:PATH, append:PATH or truncate:PATH");
            }
        }
    })
}

/// Splits an Exec*= value into its prefixes and the command.
fn command(v: &str) -> Res<Command<'_>> {
    let mut c = Command {
        raw: "",
        ignore_failure: false,
        argv0_override: false,
        privileged: false,
        no_env_expansion: false,
    };
    let mut rest = v;
    loop {
        let flag = match rest.as_bytes().first() {
            Some(b'-') => &mut c.ignore_failure,
            Some(b'@') => &mut c.argv0_override,
            Some(b'+' | b'!') => &mut c.privileged,
            Some(b':') => &mut c.no_env_expansion,
            Some(b'|') => return Err("the '|' prefix (login shell) is not supported"),
            _ => break,
        };
        // "!!" is one prefix; any other repeat is systemd's error too.
        if *flag && !rest.starts_with("!!") {
            return Err("a command prefix is repeated");
        }
        *flag = true;
        rest = rest.get(if rest.starts_with("!!") { 2 } else { 1 }..).unwrap_or("");
    }
    if rest.trim_start().is_empty() {
        return Err("no command after the prefixes");
    }
    c.raw = rest;
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Lines

const WS: &[char] = &[' ', '\t', '\n', '\r'];

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Logical lines of a unit file: a line ending in an odd number of backslashes continues on
/// the next one (the backslash becomes a space), comment lines inside a continuation are
/// skipped. Joining happens in place, moving later bytes towards the start of the buffer.
struct Lines<'a> {
    rest: &'a mut [u8],
    next_line: u32,
}

impl<'a> Lines<'a> {
    /// The next logical line and the number of its first physical line.
    fn next_logical(&mut self) -> Option<(u32, &'a mut [u8])> {
        if self.rest.is_empty() {
            return None;
        }
        let first = self.next_line;
        let buf = core::mem::take(&mut self.rest);
        let len = buf.len();
        let mut joined = 0usize; // bytes of the logical line, at the start of buf
        let mut read = 0usize; // start of the next physical line
        let mut joining = false;
        loop {
            let newline = buf.get(read..).and_then(|t| t.iter().position(|&b| b == b'\n'));
            let end = newline.map_or(len, |p| read.saturating_add(p));
            let next = newline.map_or(len, |_| end.saturating_add(1));
            self.next_line = self.next_line.saturating_add(1);
            let mut text_end = end;
            if text_end > read && buf.get(text_end - 1) == Some(&b'\r') {
                text_end -= 1;
            }
            let physical = buf.get(read..text_end).unwrap_or(&[]);
            let comment = matches!(physical.iter().find(|b| !is_ws(**b)), Some(b'#' | b';'));
            if comment && joining {
                read = next;
                if read >= len {
                    break;
                }
                continue;
            }
            let trailing = physical.iter().rev().take_while(|&&b| b == b'\\').count();
            let continues = !comment && trailing % 2 == 1;
            // joined <= read, so this never overwrites bytes not yet read. One memmove, and
            // none on a line that is not continued (joined == read): a copy byte by byte with
            // two bounds checks each was a fifth of a parse.
            let n = text_end.saturating_sub(read);
            if joined != read && joined.checked_add(n).is_some_and(|e| e <= len) && text_end <= len {
                buf.copy_within(read..text_end, joined);
            }
            joined += n;
            read = next;
            if !continues {
                break;
            }
            if let Some(last) = joined.checked_sub(1).and_then(|i| buf.get_mut(i)) {
                *last = b' ';
            }
            joining = true;
            if read >= len {
                break;
            }
        }
        let (head, tail) = buf.split_at_mut_checked(read.min(len))?;
        self.rest = tail;
        let line = head.split_at_mut_checked(joined.min(head.len()))?.0;
        Some((first, line))
    }
}

// ---------------------------------------------------------------------------------------------
// The parser

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Unit,
    Service,
    Install,
    /// Unknown (warned about) or `X-` (silently ignored).
    Ignored,
}

struct Builder<'a> {
    unit: Unit<'a>,
    warnings: Vec<Diag<'a>, MAX_WARNINGS>,
    dropped_warnings: u16,
    stdout_set: bool,
    exec_start_line: u32,
    restart_line: u32,
    /// The later of RootImage= / RootDirectory=, for the error when both are set.
    root_line: u32,
}

impl<'a> Builder<'a> {
    fn warn(&mut self, line: u32, key: Option<&'a str>, message: &'static str) {
        if self.warnings.push(Diag { line, key, message }).is_err() {
            self.dropped_warnings = self.dropped_warnings.saturating_add(1);
        }
    }

    /// Applies one assignment of a known section.
    fn assign(&mut self, line: u32, section: Section, key: &'a str, value: &'a str) -> Res<()> {
        if matches!(key, "RootImage" | "RootDirectory") && !value.is_empty() {
            self.root_line = line;
        }
        let u = &mut self.unit;
        match (section, key) {
            (Section::Unit, "Description") => u.description = Some(value).filter(|v| !v.is_empty()),
            (Section::Unit, "Documentation" | "DefaultDependencies") => {}
            (Section::Unit, "After") => return self.dependencies(value, List::After),
            (Section::Unit, "Before") => return self.dependencies(value, List::Before),
            (Section::Unit, "Requires") => return self.dependencies(value, List::Requires),
            (Section::Unit, "Wants") => return self.dependencies(value, List::Wants),
            (Section::Unit, "ConditionPathExists") => {
                if value.is_empty() {
                    u.conditions.clear();
                    return Ok(());
                }
                let mut c = Condition { path: value, negate: false, trigger: false };
                loop {
                    if let Some(p) = c.path.strip_prefix('|') {
                        c.trigger = true;
                        c.path = p;
                    } else if let Some(p) = c.path.strip_prefix('!') {
                        c.negate = true;
                        c.path = p;
                    } else {
                        break;
                    }
                }
                absolute(c.path)?;
                u.conditions.push(c).map_err(|_| "too many ConditionPathExists= (MAX_CONDITIONS = 4)")?;
            }
            (Section::Unit, _) if key.starts_with("Condition") || key.starts_with("Assert") => {
                self.warn(line, Some(key), "unsupported condition, ignored: the unit starts as if it held");
            }
            (Section::Service, "Type") => {
                self.unit.service_type = match value {
                    "simple" | "exec" | "" => ServiceType::Simple,
                    "oneshot" => ServiceType::Oneshot,
                    "notify" => ServiceType::Notify,
                    "idle" => {
                        self.warn(line, Some(key), "Type=idle runs as Type=simple");
                        ServiceType::Simple
                    }
                    "notify-reload" => {
                        self.warn(line, Some(key), "Type=notify-reload runs as Type=notify (no reload)");
                        ServiceType::Notify
                    }
                    "forking" => return Err("Type=forking is not supported: run the daemon in the foreground with Type=simple or notify"),
                    _ => return Err("expected simple, exec, oneshot or notify"),
                };
            }
            (Section::Service, "RemainAfterExit") => u.remain_after_exit = boolean(value)?,
            (Section::Service, "ExecStart") => {
                self.exec_start_line = line;
                return commands(&mut self.unit.exec_start, value);
            }
            (Section::Service, "ExecStartPre") => return commands(&mut u.exec_start_pre, value),
            (Section::Service, "ExecStop") => return commands(&mut u.exec_stop, value),
            (Section::Service, "Restart") => {
                self.restart_line = line;
                u.restart = match value {
                    "no" | "" => Restart::No,
                    "always" => Restart::Always,
                    "on-success" => Restart::OnSuccess,
                    "on-failure" => Restart::OnFailure,
                    "on-abnormal" => Restart::OnAbnormal,
                    "on-abort" => Restart::OnAbort,
                    "on-watchdog" => Restart::OnWatchdog,
                    _ => return Err("expected no, always, on-success, on-failure, on-abnormal, on-abort or on-watchdog"),
                };
            }
            (Section::Service, "RestartSec") => {
                u.restart_sec_ms = match value {
                    "" => DEFAULT_RESTART_SEC_MS,
                    "infinity" => return Err("RestartSec=infinity is not supported: use Restart=no"),
                    v => timespan_ms(v)?,
                };
            }
            (Section::Service, "User") => u.user = user_name(value)?,
            (Section::Service, "Group") => u.group = user_name(value)?,
            (Section::Service, "SupplementaryGroups") => {
                if value.is_empty() {
                    u.supplementary_groups.clear();
                }
                for g in value.split_ascii_whitespace() {
                    if !valid_user_name(g) {
                        return Err("invalid group name");
                    }
                    u.supplementary_groups.push(g).map_err(|_| "too many groups (MAX_GROUPS = 16)")?;
                }
            }
            (Section::Service, "WorkingDirectory") => {
                u.working_directory = if value.is_empty() { None } else { Some(path_arg(value, true)?) };
            }
            (Section::Service, "Environment") => {
                if value.is_empty() {
                    u.environment.clear();
                    return Ok(());
                }
                crate::env::check_assignments(value).map_err(crate::env::EnvError::message)?;
                u.environment.push(value).map_err(|_| "too many Environment= lines (MAX_ENV_LINES = 16)")?;
            }
            (Section::Service, "EnvironmentFile") => {
                if value.is_empty() {
                    u.environment_files.clear();
                    return Ok(());
                }
                let p = path_arg(value, false)?;
                u.environment_files.push(p).map_err(|_| "too many EnvironmentFile= lines (MAX_ENV_FILES = 4)")?;
            }
            (Section::Service, "StandardInput") => {
                u.stdin = match value {
                    "null" | "" => StdIn::Null,
                    "tty" | "tty-force" | "tty-fail" => StdIn::Tty,
                    _ => return Err("expected null, tty, tty-force or tty-fail"),
                };
            }
            (Section::Service, "StandardOutput") => {
                self.stdout_set = !value.is_empty();
                u.stdout = if value.is_empty() { StdOut::Kmsg } else { std_out(value)? };
            }
            (Section::Service, "StandardError") => {
                u.stderr = if value.is_empty() { StdOut::Inherit } else { std_out(value)? };
            }
            (Section::Service, "TTYPath") => {
                u.tty_path = if value.is_empty() { None } else { Some(absolute(value)?) };
            }
            (Section::Service, "KillSignal") => {
                u.kill_signal = match value {
                    "" => SIGTERM,
                    v => signal_number(v).ok_or("expected a signal (SIGTERM, TERM, 15)")?,
                };
            }
            (Section::Service, "TimeoutStopSec") => u.timeout_stop_ms = timeout(value, DEFAULT_TIMEOUT_STOP_MS)?,
            (Section::Service, "TimeoutStartSec") => u.timeout_start_ms = timeout(value, DEFAULT_TIMEOUT_START_MS)?,
            (Section::Service, "TimeoutSec") => {
                u.timeout_stop_ms = timeout(value, DEFAULT_TIMEOUT_STOP_MS)?;
                u.timeout_start_ms = timeout(value, DEFAULT_TIMEOUT_START_MS)?;
            }
            (Section::Service, "LimitNOFILE") => u.limit_nofile = optional(value, |v| rlimit(v, false))?,
            (Section::Service, "LimitNPROC") => u.limit_nproc = optional(value, |v| rlimit(v, false))?,
            (Section::Service, "LimitCORE") => u.limit_core = optional(value, |v| rlimit(v, true))?,
            (Section::Service, "Nice") => {
                u.nice = optional(value, |v| {
                    let (neg, digits) = v.strip_prefix('-').map_or((false, v), |d| (true, d));
                    let n = decimal_u64(digits.strip_prefix('+').unwrap_or(digits)).filter(|&n| n <= 20);
                    match (neg, n) {
                        (true, Some(n)) => Ok(-(n as i8)),
                        (false, Some(n)) if n <= 19 => Ok(n as i8),
                        _ => Err("expected a nice level -20..19"),
                    }
                })?;
            }
            (Section::Service, "UMask") => {
                u.umask = optional(value, |v| {
                    // to_digit: a byte below '0' must be refused, not subtracted from.
                    let n = v.bytes().try_fold(0u32, |acc, b| acc.checked_mul(8)?.checked_add(char::from(b).to_digit(8)?));
                    n.filter(|&n| !v.is_empty() && n <= 0o7777).ok_or("expected an octal mode up to 7777")
                })?;
            }
            (Section::Service, "NoNewPrivileges") => u.no_new_privileges = boolean(value)?,
            (Section::Service, "CapabilityBoundingSet") => {
                let current = self.unit.capability_bounding_set;
                self.unit.capability_bounding_set = self.capabilities(line, key, value, current, None)?;
            }
            (Section::Service, "AmbientCapabilities") => {
                let current = Some(self.unit.ambient_capabilities);
                self.unit.ambient_capabilities = self.capabilities(line, key, value, current, Some(0))?.unwrap_or(0);
            }
            (Section::Service, "MemoryMax") => {
                u.memory_max = optional(value, |v| {
                    if v == "infinity" {
                        return Ok(Limit::Infinity);
                    }
                    if let Some(p) = percent(v) {
                        return p.map(Limit::Percent);
                    }
                    size_bytes(v).map(Limit::Bytes).ok_or("expected bytes (K, M, G, T suffixes), N% or infinity")
                })?;
            }
            (Section::Service, "TasksMax") => {
                u.tasks_max = optional(value, |v| {
                    if v == "infinity" {
                        return Ok(Limit::Infinity);
                    }
                    if let Some(p) = percent(v) {
                        return p.map(Limit::Percent);
                    }
                    decimal_u64(v).filter(|&n| n > 0).map(Limit::Count).ok_or("expected a count above 0, N% or infinity")
                })?;
            }
            (Section::Service, "CPUWeight") => {
                u.cpu_weight = optional(value, |v| {
                    decimal_u64(v)
                        .filter(|n| (1..=10_000).contains(n))
                        .map(|n| n as u16)
                        .ok_or("expected a weight 1..10000")
                })?;
            }
            (Section::Service, "RootImage") => u.root_image = if value.is_empty() { None } else { Some(absolute(value)?) },
            (Section::Service, "RootDirectory") => u.root_directory = if value.is_empty() { None } else { Some(absolute(value)?) },
            (Section::Service, "PrivateMounts") => u.private_mounts = boolean(value)?,
            (Section::Service, "PrivatePIDs") => {
                u.private_pids = match value {
                    "init" => PrivatePids::Init,
                    v => {
                        if boolean(v).map_err(|_| "expected yes, no or init")? { PrivatePids::Yes } else { PrivatePids::No }
                    }
                };
            }
            (Section::Service, "PrivateNetwork") => u.private_network = boolean(value)?,
            (Section::Service, "PrivateUsers") => u.private_users = crate::container_spec::private_users(value)?,
            (Section::Service, "PrivateIPC") => u.private_ipc = boolean(value)?,
            (Section::Service, "Hostname") => u.hostname = if value.is_empty() { None } else { Some(crate::container_spec::hostname(value)?) },
            (Section::Service, "BindPaths" | "BindReadOnlyPaths") => {
                let ro = key == "BindReadOnlyPaths";
                let list = if ro { &mut u.bind_read_only_paths } else { &mut u.bind_paths };
                if value.is_empty() {
                    list.clear();
                    return Ok(());
                }
                crate::container_spec::binds(value, ro, |_| Ok(()))?;
                list.push(value).map_err(|_| "too many lines of this key (MAX_MOUNT_LINES = 8)")?;
            }
            (Section::Service, "TemporaryFileSystem") => {
                if value.is_empty() {
                    u.temporary_file_system.clear();
                    return Ok(());
                }
                crate::container_spec::tmpfs_list(value, |_| Ok(()))?;
                u.temporary_file_system.push(value).map_err(|_| "too many TemporaryFileSystem= lines (MAX_MOUNT_LINES = 8)")?;
            }
            (Section::Install, _) => {}
            _ => self.warn(line, Some(key), "unknown key, ignored"),
        }
        Ok(())
    }

    fn dependencies(&mut self, value: &'a str, which: List) -> Res<()> {
        let list = match which {
            List::After => &mut self.unit.after,
            List::Before => &mut self.unit.before,
            List::Requires => &mut self.unit.requires,
            List::Wants => &mut self.unit.wants,
        };
        if value.is_empty() {
            list.clear();
        }
        for name in value.split_ascii_whitespace() {
            match dependency_kind(name) {
                None => return Err("invalid unit name"),
                // Targets, sockets, mounts...: nothing provides them, so they are satisfied.
                Some(false) => {}
                Some(true) => {
                    if !list.contains(&name) {
                        list.push(name).map_err(|_| "too many service names (MAX_DEPS = 16)")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// systemd's merging: a set replaces the unset (or initial) value or is ORed into it;
    /// `~set` replaces it with its complement or is ANDed out of it. Empty: the empty set;
    /// `~` alone: every capability.
    fn capabilities(
        &mut self,
        line: u32,
        key: &'a str,
        value: &'a str,
        current: Option<u64>,
        initial: Option<u64>,
    ) -> Res<Option<u64>> {
        let (invert, names) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let mut set = 0u64;
        for name in names.split_ascii_whitespace() {
            match capability_number(name) {
                Some(n) => set |= 1 << n,
                // systemd ignores names it does not know, so that units written for newer
                // kernels still load.
                None => self.warn(line, Some(key), "unknown capability, ignored"),
            }
        }
        if names.trim().is_empty() {
            return Ok(Some(if invert { CAP_ALL } else { 0 }));
        }
        Ok(Some(match current {
            Some(c) if current != initial => {
                if invert { c & !set } else { c | set }
            }
            _ => {
                if invert { CAP_ALL & !set } else { set }
            }
        }))
    }

    fn finish(mut self) -> Result<Unit<'a>, Diag<'a>> {
        let u = &mut self.unit;
        if !self.stdout_set && u.stdin == StdIn::Tty {
            // systemd: with a tty on stdin, stdout defaults to it.
            u.stdout = StdOut::Inherit;
        }
        if u.exec_start.is_empty() {
            return Err(Diag { line: 0, key: Some("ExecStart"), message: "no ExecStart= in the unit" });
        }
        if u.exec_start.len() > 1 && u.service_type != ServiceType::Oneshot {
            return Err(Diag {
                line: self.exec_start_line,
                key: Some("ExecStart"),
                message: "more than one ExecStart= needs Type=oneshot",
            });
        }
        if u.root_image.is_some() && u.root_directory.is_some() {
            return Err(Diag { line: self.root_line, key: Some("RootImage"), message: "RootImage= and RootDirectory= exclude each other" });
        }
        if u.service_type == ServiceType::Oneshot && matches!(u.restart, Restart::Always | Restart::OnSuccess) {
            return Err(Diag {
                line: self.restart_line,
                key: Some("Restart"),
                message: "Restart=always and on-success are not allowed with Type=oneshot",
            });
        }
        Ok(self.unit)
    }
}

#[derive(Clone, Copy)]
enum List {
    After,
    Before,
    Requires,
    Wants,
}

fn commands<'a>(list: &mut Vec<Command<'a>, MAX_COMMANDS>, value: &'a str) -> Res<()> {
    if value.is_empty() {
        list.clear();
        return Ok(());
    }
    let c = command(value)?;
    crate::exec_line::check(c.raw, c.argv0_override).map_err(crate::exec_line::SplitError::message)?;
    list.push(c).map_err(|_| "too many commands (MAX_COMMANDS = 8)")
}

fn user_name(v: &str) -> Res<Option<&str>> {
    if v.is_empty() {
        return Ok(None);
    }
    if valid_user_name(v) { Ok(Some(v)) } else { Err("invalid user or group name") }
}

fn optional<T>(v: &str, parse: impl FnOnce(&str) -> Res<T>) -> Res<Option<T>> {
    if v.is_empty() { Ok(None) } else { parse(v).map(Some) }
}

/// TimeoutStopSec= and TimeoutStartSec=: 0 means infinity, as in systemd.
fn timeout(v: &str, default: u64) -> Res<u64> {
    match v {
        "" => Ok(default),
        v => timespan_ms(v).map(|ms| if ms == 0 { u64::MAX } else { ms }),
    }
}

/// Keys whose values systemd expands specifiers in and autoinit passes on as strings.
fn takes_specifiers(key: &str) -> bool {
    matches!(
        key,
        "Description"
            | "After"
            | "Before"
            | "Requires"
            | "Wants"
            | "ConditionPathExists"
            | "ExecStart"
            | "ExecStartPre"
            | "ExecStop"
            | "User"
            | "Group"
            | "WorkingDirectory"
            | "Environment"
            | "EnvironmentFile"
            | "StandardOutput"
            | "StandardError"
            | "TTYPath"
    )
}

/// Parses a unit file held in `text` (which it rewrites to join continued lines). The unit is
/// rejected on the first error; unknown sections and keys are warnings.
pub fn parse(text: &mut [u8]) -> Parsed<'_> {
    let mut b = Builder {
        unit: Unit::default(),
        warnings: Vec::new(),
        dropped_warnings: 0,
        stdout_set: false,
        exec_start_line: 0,
        restart_line: 0,
        root_line: 0,
    };
    let result = parse_into(text, &mut b);
    let warnings = core::mem::take(&mut b.warnings);
    let dropped_warnings = b.dropped_warnings;
    Parsed { unit: result.and_then(|()| b.finish()), warnings, dropped_warnings }
}

fn diag<'a>(line: u32, key: Option<&'a str>, message: &'static str) -> Diag<'a> {
    Diag { line, key, message }
}

fn parse_into<'a>(text: &'a mut [u8], b: &mut Builder<'a>) -> Result<(), Diag<'a>> {
    if text.len() > UNIT_FILE_BYTES {
        return Err(diag(0, None, "file larger than UNIT_FILE_BYTES (8192)"));
    }
    let mut lines = Lines { rest: text, next_line: 1 };
    let mut section = Section::None;
    while let Some((n, bytes)) = lines.next_logical() {
        let bytes: &'a [u8] = bytes;
        let bytes = if n == 1 { bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes) } else { bytes };
        if bytes.contains(&0) {
            return Err(diag(n, None, "NUL byte in the line"));
        }
        let Ok(line) = core::str::from_utf8(bytes) else {
            return Err(diag(n, None, "line is not valid UTF-8"));
        };
        let line = line.trim_matches(WS);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(diag(n, None, "section header without ']'"));
            };
            section = match name {
                "Unit" => Section::Unit,
                "Service" => Section::Service,
                "Install" => Section::Install,
                _ => {
                    if !name.starts_with("X-") {
                        b.warn(n, Some(name), "unknown section, its keys are ignored");
                    }
                    Section::Ignored
                }
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(diag(n, None, "expected KEY=VALUE or [Section]"));
        };
        let key = key.trim_matches(WS);
        let value = value.trim_matches(WS);
        if key.is_empty() {
            return Err(diag(n, None, "empty key before '='"));
        }
        match section {
            Section::None => return Err(diag(n, Some(key), "assignment before the first section")),
            Section::Ignored | Section::Install => continue,
            Section::Unit | Section::Service => {}
        }
        if key.starts_with("X-") {
            continue;
        }
        b.assign(n, section, key, value).map_err(|m| diag(n, Some(key), m))?;
        if takes_specifiers(key)
            && let Some(problem) = specifier_problem(value)
        {
            b.warn(n, Some(key), problem);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a copy of `text`, leaked so the result can outlive the call in tests.
    fn p(text: &str) -> Parsed<'static> {
        parse(std::vec::Vec::leak(text.as_bytes().to_vec()))
    }

    fn ok(text: &str) -> Unit<'static> {
        let parsed = p(text);
        match parsed.unit {
            Ok(u) => u,
            Err(d) => panic!("unexpected error {d:?}"),
        }
    }

    fn err(text: &str) -> Diag<'static> {
        match p(text).unit {
            Ok(u) => panic!("unexpectedly accepted: {u:?}"),
            Err(d) => d,
        }
    }

    fn warnings(text: &str) -> std::vec::Vec<(u32, Option<&'static str>, &'static str)> {
        p(text).warnings.iter().map(|d| (d.line, d.key, d.message)).collect()
    }

    const SSH: &str = "\
[Unit]
Description=OpenBSD Secure Shell server
Documentation=man:sshd(8) man:sshd_config(5)
After=network.target auditd.service
ConditionPathExists=!/etc/ssh/sshd_not_to_be_run

[Service]
EnvironmentFile=-/etc/default/ssh
ExecStartPre=/usr/sbin/sshd -t
ExecStart=/usr/sbin/sshd -D $SSHD_OPTS
ExecReload=/usr/sbin/sshd -t
ExecReload=/bin/kill -HUP $MAINPID
KillMode=process
Restart=on-failure
RestartPreventExitStatus=255
Type=notify
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755

[Install]
WantedBy=multi-user.target
Alias=sshd.service
";

    #[test]
    fn debian_ssh_service() {
        let parsed = p(SSH);
        let u = parsed.unit.unwrap();
        assert_eq!(u.description, Some("OpenBSD Secure Shell server"));
        assert_eq!(u.after.as_slice(), &["auditd.service"]);
        assert_eq!(u.conditions.as_slice(), &[Condition { path: "/etc/ssh/sshd_not_to_be_run", negate: true, trigger: false }]);
        assert_eq!(u.environment_files.as_slice(), &[PathArg { path: "/etc/default/ssh", ignore_missing: true }]);
        assert_eq!(u.exec_start_pre.first().unwrap().raw, "/usr/sbin/sshd -t");
        assert_eq!(u.exec_start.first().unwrap().raw, "/usr/sbin/sshd -D $SSHD_OPTS");
        assert_eq!(u.restart, Restart::OnFailure);
        assert_eq!(u.service_type, ServiceType::Notify);
        assert_eq!(u.stdout, StdOut::Kmsg);
        assert_eq!(u.stderr, StdOut::Inherit);
        assert_eq!(u.kill_signal, 15);
        assert_eq!(u.timeout_stop_ms, DEFAULT_TIMEOUT_STOP_MS);
        let w: std::vec::Vec<_> = parsed.warnings.iter().map(|d| (d.line, d.key.unwrap())).collect();
        assert_eq!(
            w,
            [(11, "ExecReload"), (12, "ExecReload"), (13, "KillMode"), (15, "RestartPreventExitStatus"), (17, "RuntimeDirectory"), (18, "RuntimeDirectoryMode")]
        );
        assert!(parsed.warnings.iter().all(|d| d.message == "unknown key, ignored"));
    }

    const CRON: &str = "\
[Unit]
Description=Regular background program processing daemon
Documentation=man:cron(8)
After=remote-fs.target nss-user-lookup.target

[Service]
EnvironmentFile=-/etc/default/cron
ExecStart=/usr/sbin/cron -f -P $EXTRA_OPTS
IgnoreSIGPIPE=false
KillMode=process
Restart=on-failure
SyslogFacility=cron

[Install]
WantedBy=multi-user.target
";

    #[test]
    fn debian_cron_service() {
        let parsed = p(CRON);
        let u = parsed.unit.unwrap();
        assert!(u.after.is_empty(), "targets are dropped");
        assert_eq!(u.exec_start.len(), 1);
        assert_eq!(u.restart, Restart::OnFailure);
        assert_eq!(parsed.warnings.len(), 3);
    }

    const GETTY: &str = "\
[Unit]
Description=Serial Getty on %I
Documentation=man:agetty(8) man:systemd-getty-generator(8)
BindsTo=dev-%i.device
After=dev-%i.device systemd-user-sessions.service plymouth-quit-wait.service getty-pre.target
After=rc-local.service
Before=getty.target
IgnoreOnIsolate=yes
Conflicts=rescue.service
Before=rescue.service

[Service]
# The '-o' option value tells agetty to replace 'login' arguments with an
# option to preserve environment (-p), followed by '--' for safety, and then
# the entered username.
ExecStart=-/sbin/agetty -o '-p -- \\\\u' --keep-baud 115200,57600,38400,9600 - $TERM
Type=idle
Restart=always
UtmpIdentifier=%I
StandardInput=tty
StandardOutput=tty
TTYPath=/dev/%I
TTYReset=yes
TTYVHangup=yes
IgnoreSIGPIPE=no
SendSIGHUP=yes
ImportCredential=agetty.*
ImportCredential=login.*

[Install]
WantedBy=getty.target
";

    #[test]
    fn debian_serial_getty() {
        let parsed = p(GETTY);
        let u = parsed.unit.clone().unwrap();
        assert_eq!(u.after.as_slice(), &["systemd-user-sessions.service", "plymouth-quit-wait.service", "rc-local.service"]);
        assert_eq!(u.before.as_slice(), &["rescue.service"]);
        let c = u.exec_start.first().unwrap();
        assert!(c.ignore_failure);
        assert_eq!(c.raw, "/sbin/agetty -o '-p -- \\\\u' --keep-baud 115200,57600,38400,9600 - $TERM");
        assert_eq!(u.service_type, ServiceType::Simple);
        assert_eq!(u.restart, Restart::Always);
        assert_eq!(u.stdin, StdIn::Tty);
        assert_eq!(u.stdout, StdOut::Tty);
        assert_eq!(u.tty_path, Some("/dev/%I"));
        let w = warnings(GETTY);
        assert!(w.contains(&(4, Some("BindsTo"), "unknown key, ignored")));
        assert!(w.contains(&(17, Some("Type"), "Type=idle runs as Type=simple")));
        assert_eq!(parsed.warnings.len(), MAX_WARNINGS);
        assert_eq!(parsed.dropped_warnings, 3, "{w:?}");
    }

    const NGINX: &str = "\
[Unit]
Description=A high performance web server and a reverse proxy server
Documentation=man:nginx(8)
After=network.target nss-lookup.target

[Service]
Type=forking
PIDFile=/run/nginx.pid
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'
ExecReload=/usr/sbin/nginx -g 'daemon on; master_process on;' -s reload
ExecStop=-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx.pid
TimeoutStopSec=5
KillMode=mixed

[Install]
WantedBy=multi-user.target
";

    #[test]
    fn nginx_forking_is_rejected_and_its_foreground_form_accepted() {
        assert_eq!(
            err(NGINX),
            Diag { line: 7, key: Some("Type"), message: "Type=forking is not supported: run the daemon in the foreground with Type=simple or notify" }
        );
        let fg = NGINX.replace("Type=forking", "Type=simple").replace("daemon on", "daemon off");
        let u = ok(&fg);
        assert_eq!(u.timeout_stop_ms, 5000);
        assert_eq!(u.exec_stop.first().unwrap().raw, "/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx.pid");
        assert!(u.exec_stop.first().unwrap().ignore_failure);
    }

    #[test]
    fn every_key() {
        let u = ok("\
[Unit]
Description=All of it
Requires=a.service b.service
Wants=c.service
ConditionPathExists=|/x
ConditionPathExists=|!/y
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStartPre=+/bin/prep
ExecStart=@/bin/busybox sh -c 'echo hi'
ExecStart=:-/bin/true $NOPE
ExecStop=!!/bin/stop
Restart=on-failure
RestartSec=1min 30s
User=daemon
Group=nogroup
SupplementaryGroups=dialout  video
SupplementaryGroups=audio
WorkingDirectory=-~
Environment=A=1 \"B=two words\"
Environment=C=3
EnvironmentFile=/etc/default/x
StandardInput=tty-force
StandardOutput=append:/var/log/x.log
StandardError=file:/var/log/x.err
TTYPath=/dev/ttyS1
KillSignal=SIGINT
TimeoutStartSec=0
TimeoutStopSec=infinity
LimitNOFILE=1024:4096
LimitNPROC=infinity
LimitCORE=2M:infinity
Nice=-5
UMask=0027
NoNewPrivileges=true
CapabilityBoundingSet=CAP_NET_BIND_SERVICE cap_net_raw
AmbientCapabilities=CAP_NET_BIND_SERVICE
MemoryMax=64M
TasksMax=10%
CPUWeight=200
");
        assert_eq!(u.requires.as_slice(), &["a.service", "b.service"]);
        assert_eq!(u.wants.as_slice(), &["c.service"]);
        assert_eq!(
            u.conditions.as_slice(),
            &[Condition { path: "/x", negate: false, trigger: true }, Condition { path: "/y", negate: true, trigger: true }]
        );
        assert_eq!(u.service_type, ServiceType::Oneshot);
        assert!(u.remain_after_exit);
        assert!(u.exec_start_pre[0].privileged);
        assert_eq!(u.exec_start[0], Command { raw: "/bin/busybox sh -c 'echo hi'", ignore_failure: false, argv0_override: true, privileged: false, no_env_expansion: false });
        assert_eq!(u.exec_start[1], Command { raw: "/bin/true $NOPE", ignore_failure: true, argv0_override: false, privileged: false, no_env_expansion: true });
        assert!(u.exec_stop[0].privileged);
        assert_eq!(u.exec_stop[0].raw, "/bin/stop");
        assert_eq!(u.restart_sec_ms, 90_000);
        assert_eq!((u.user, u.group), (Some("daemon"), Some("nogroup")));
        assert_eq!(u.supplementary_groups.as_slice(), &["dialout", "video", "audio"]);
        assert_eq!(u.working_directory, Some(PathArg { path: "~", ignore_missing: true }));
        assert_eq!(u.environment.as_slice(), &["A=1 \"B=two words\"", "C=3"]);
        assert_eq!(u.environment_files[0], PathArg { path: "/etc/default/x", ignore_missing: false });
        assert_eq!(u.stdin, StdIn::Tty);
        assert_eq!(u.stdout, StdOut::Append("/var/log/x.log"));
        assert_eq!(u.stderr, StdOut::File("/var/log/x.err"));
        assert_eq!(u.tty_path, Some("/dev/ttyS1"));
        assert_eq!(u.kill_signal, 2);
        assert_eq!((u.timeout_start_ms, u.timeout_stop_ms), (u64::MAX, u64::MAX));
        assert_eq!(u.limit_nofile, Some(Rlimit { soft: 1024, hard: 4096 }));
        assert_eq!(u.limit_nproc, Some(Rlimit { soft: RLIM_INFINITY, hard: RLIM_INFINITY }));
        assert_eq!(u.limit_core, Some(Rlimit { soft: 2 << 20, hard: RLIM_INFINITY }));
        assert_eq!(u.nice, Some(-5));
        assert_eq!(u.umask, Some(0o027));
        assert!(u.no_new_privileges);
        assert_eq!(u.capability_bounding_set, Some(1 << 10 | 1 << 13));
        assert_eq!(u.ambient_capabilities, 1 << 10);
        assert_eq!(u.memory_max, Some(Limit::Bytes(64 << 20)));
        assert_eq!(u.tasks_max, Some(Limit::Percent(10)));
        assert_eq!(u.cpu_weight, Some(200));
    }

    #[test]
    fn unit_size() {
        // The runtime decides how many of these it keeps; this is the number it works with.
        println!("size_of::<Unit>() = {}", core::mem::size_of::<Unit>());
        assert!(core::mem::size_of::<Unit>() < 4096);
    }

    #[test]
    fn defaults() {
        let u = ok("[Service]\nExecStart=/bin/sleep 1\n");
        assert_eq!(u, Unit { exec_start: u.exec_start.clone(), ..Unit::default() });
        assert_eq!(u.restart_sec_ms, 100);
        assert_eq!(u.kill_signal, SIGTERM);
        assert_eq!(u.stdout, StdOut::Kmsg);
        assert_eq!(u.capability_bounding_set, None);
    }

    #[test]
    fn continuation_lines_join_in_place() {
        let text = "[Service]\nExecStart=/bin/echo a \\\n  b \\\n# a comment\n; another\n  c\nGroup=y\n";
        let u = ok(text);
        assert_eq!(u.exec_start[0].raw, "/bin/echo a    b    c");
        assert_eq!(u.group, Some("y"));
        // An escaped backslash does not continue: User=x\\ is one line, and an invalid name.
        assert_eq!(err("[Service]\nExecStart=/bin/a\nUser=x\\\\\n"), diag(3, Some("User"), "invalid user or group name"));
        // Line numbers after a continuation count physical lines.
        assert_eq!(err("[Service]\nExecStart=/bin/a \\\n b\nNice=99\n"), diag(4, Some("Nice"), "expected a nice level -20..19"));
        // A continuation at the end of the file, CRLF line ends.
        let u = ok("[Service]\r\nExecStart=/bin/a \\\r\n b\\");
        assert_eq!(u.exec_start[0].raw, "/bin/a   b");
        // A comment line ending in a backslash does not continue.
        let u = ok("[Service]\n# comment \\\nExecStart=/bin/a\n");
        assert_eq!(u.exec_start[0].raw, "/bin/a");
    }

    #[test]
    fn empty_assignment_resets_lists() {
        let u = ok("[Unit]\nAfter=a.service\nAfter=\nAfter=b.service\nConditionPathExists=/a\nConditionPathExists=\n[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\nEnvironment=A=1\nEnvironment=\nSupplementaryGroups=a\nSupplementaryGroups=\nExecStop=/x\nExecStop=\n");
        assert_eq!(u.after.as_slice(), &["b.service"]);
        assert!(u.conditions.is_empty());
        assert_eq!(u.exec_start.len(), 1);
        assert_eq!(u.exec_start[0].raw, "/bin/b");
        assert!(u.environment.is_empty() && u.supplementary_groups.is_empty() && u.exec_stop.is_empty());
    }

    #[test]
    fn syntax_errors_name_line_and_key() {
        assert_eq!(err("ExecStart=/bin/a\n"), diag(1, Some("ExecStart"), "assignment before the first section"));
        assert_eq!(err("# c\n\n[Service\nExecStart=/bin/a\n"), diag(3, None, "section header without ']'"));
        assert_eq!(err("[Service]\nExecStart=/bin/a\njunk\n"), diag(3, None, "expected KEY=VALUE or [Section]"));
        assert_eq!(err("[Service]\n =x\n"), diag(2, None, "empty key before '='"));
        let mut bad = b"[Service]\nExecStart=/bin/a\nUser=\xffoo\n".to_vec();
        assert_eq!(parse(&mut bad).unit.unwrap_err().message, "line is not valid UTF-8");
        let mut nul = b"[Service]\nExecStart=/bin/a\0\n".to_vec();
        assert_eq!(parse(&mut nul).unit.unwrap_err(), diag(2, None, "NUL byte in the line"));
        assert_eq!(err("[Unit]\nDescription=x\n"), diag(0, Some("ExecStart"), "no ExecStart= in the unit"));
        assert_eq!(err("[Service]\nExecStart=/a\nExecStart=/b\n"), diag(3, Some("ExecStart"), "more than one ExecStart= needs Type=oneshot"));
        assert_eq!(
            err("[Service]\nRestart=always\nType=oneshot\nExecStart=/a\n"),
            diag(2, Some("Restart"), "Restart=always and on-success are not allowed with Type=oneshot")
        );
        let big = "#".repeat(UNIT_FILE_BYTES + 1);
        assert_eq!(err(&big), diag(0, None, "file larger than UNIT_FILE_BYTES (8192)"));
        let exactly = format!("[Service]\nExecStart=/a\n{}", "#".repeat(UNIT_FILE_BYTES - 23));
        assert_eq!(exactly.len(), UNIT_FILE_BYTES);
        ok(&exactly);
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("Type", "forked", "expected simple, exec, oneshot or notify"),
            ("Type", "dbus", "expected simple, exec, oneshot or notify"),
            ("RemainAfterExit", "maybe", "expected a boolean (yes/no, true/false, on/off, 1/0)"),
            ("ExecStart", "-", "no command after the prefixes"),
            ("ExecStart", "--/bin/a", "a command prefix is repeated"),
            ("ExecStart", "|/bin/a", "the '|' prefix (login shell) is not supported"),
            ("ExecStart", "/bin/sh -c 'echo", "unterminated quote in the command line"),
            ("ExecStartPre", "/bin/echo \\q", "unknown backslash escape in the command line"),
            ("ExecStop", "bin/stop", "the program must be an absolute path or a bare name"),
            ("ExecStart", "@/bin/busybox", "the '@' prefix needs the program and its argv[0]"),
            ("Environment", "A=1 B-C=2", "invalid variable name (expected [A-Za-z_][A-Za-z0-9_]*)"),
            ("Environment", "\"A=1", "unterminated quote"),
            ("Restart", "sometimes", "expected no, always, on-success, on-failure, on-abnormal, on-abort or on-watchdog"),
            ("RestartSec", "5 parsecs", "expected a time span (\"5\", \"500ms\", \"1min 30s\", \"infinity\")"),
            ("RestartSec", "-1", "expected a time span (\"5\", \"500ms\", \"1min 30s\", \"infinity\")"),
            ("RestartSec", "infinity", "RestartSec=infinity is not supported: use Restart=no"),
            ("User", "root:root", "invalid user or group name"),
            ("Group", "-wheel", "invalid user or group name"),
            ("SupplementaryGroups", "a b/c", "invalid group name"),
            ("WorkingDirectory", "relative/dir", "expected an absolute path"),
            ("EnvironmentFile", "-etc/x", "expected an absolute path"),
            ("StandardInput", "socket", "expected null, tty, tty-force or tty-fail"),
            ("StandardOutput", "file:relative", "expected an absolute path"),
            ("StandardError", "socket", "expected inherit, null, tty, kmsg, journal, console, file:PATH, append:PATH or truncate:PATH"),
            ("TTYPath", "ttyS0", "expected an absolute path"),
            ("KillSignal", "SIGFOO", "expected a signal (SIGTERM, TERM, 15)"),
            ("KillSignal", "65", "expected a signal (SIGTERM, TERM, 15)"),
            ("TimeoutStopSec", "soon", "expected a time span (\"5\", \"500ms\", \"1min 30s\", \"infinity\")"),
            ("LimitNOFILE", "4096:1024", "soft limit above the hard limit"),
            ("LimitNOFILE", "1K", "expected N, SOFT:HARD or infinity"),
            ("LimitCORE", "lots", "expected N, SOFT:HARD or infinity (sizes may end in K, M, G, T)"),
            ("Nice", "20", "expected a nice level -20..19"),
            ("Nice", "-21", "expected a nice level -20..19"),
            ("UMask", "0800", "expected an octal mode up to 7777"),
            ("UMask", "17777", "expected an octal mode up to 7777"),
            // Bytes below '0' (found by fuzzing: they overflowed a subtraction).
            ("UMask", "0 22", "expected an octal mode up to 7777"),
            ("UMask", "-022", "expected an octal mode up to 7777"),
            ("UMask", "0\u{2}27", "expected an octal mode up to 7777"),
            ("NoNewPrivileges", "2", "expected a boolean (yes/no, true/false, on/off, 1/0)"),
            ("MemoryMax", "101%", "expected a whole percentage 0%..100%"),
            ("MemoryMax", "12Q", "expected bytes (K, M, G, T suffixes), N% or infinity"),
            ("TasksMax", "0", "expected a count above 0, N% or infinity"),
            ("CPUWeight", "0", "expected a weight 1..10000"),
            ("CPUWeight", "10001", "expected a weight 1..10000"),
            ("After", "foo", "invalid unit name"),
            ("Requires", "a@.service", "invalid unit name"),
            ("ConditionPathExists", "!relative", "expected an absolute path"),
        ];
        for (key, value, message) in cases {
            let section = if ["After", "Requires", "ConditionPathExists"].contains(key) { "Unit" } else { "Service" };
            let text = format!("[Service]\nExecStart=/bin/a\n[{section}]\n{key}={value}\n");
            assert_eq!(err(&text), diag(4, Some(*key), message), "{key}={value}");
        }
    }

    #[test]
    fn capacities_are_errors() {
        let names: std::vec::Vec<String> = (0..=MAX_DEPS).map(|i| format!("s{i}.service")).collect();
        let text = format!("[Unit]\nAfter={}\n", names.join(" "));
        assert_eq!(err(&text), diag(2, Some("After"), "too many service names (MAX_DEPS = 16)"));
        // The same name twice takes one slot.
        ok(&format!("[Unit]\nAfter={}\nAfter=s0.service\n[Service]\nExecStart=/a\n", names[..MAX_DEPS].join(" ")));
        let mut text = String::from("[Service]\nType=oneshot\n");
        for _ in 0..=MAX_COMMANDS {
            text.push_str("ExecStart=/bin/true\n");
        }
        assert_eq!(err(&text), diag(11, Some("ExecStart"), "too many commands (MAX_COMMANDS = 8)"));
        let mut text = String::from("[Service]\n");
        for i in 0..=MAX_ENV_LINES {
            text.push_str(&format!("Environment=A{i}=1\n"));
        }
        assert_eq!(err(&text), diag(18, Some("Environment"), "too many Environment= lines (MAX_ENV_LINES = 16)"));
        let text = "[Service]\nEnvironmentFile=/a\nEnvironmentFile=/b\nEnvironmentFile=/c\nEnvironmentFile=/d\nEnvironmentFile=/e\n";
        assert_eq!(err(text), diag(6, Some("EnvironmentFile"), "too many EnvironmentFile= lines (MAX_ENV_FILES = 4)"));
        let groups: std::vec::Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert_eq!(
            err(&format!("[Service]\nSupplementaryGroups={}\n", groups.join(" "))),
            diag(2, Some("SupplementaryGroups"), "too many groups (MAX_GROUPS = 16)")
        );
        let text = "[Unit]\nConditionPathExists=/a\nConditionPathExists=/b\nConditionPathExists=/c\nConditionPathExists=/d\nConditionPathExists=/e\n";
        assert_eq!(err(text), diag(6, Some("ConditionPathExists"), "too many ConditionPathExists= (MAX_CONDITIONS = 4)"));
    }

    #[test]
    fn unknown_sections_and_keys_are_warnings() {
        let text = "[Unit]\nFoo=1\nX-Vendor=ok\n[Timer]\nOnBoot=1\n[X-Mine]\nA=b\n[Service]\nExecStart=/a\nConditionVirtualization=kvm\n[Install]\nWantedBy=x\n";
        assert_eq!(
            warnings(text),
            [
                (2, Some("Foo"), "unknown key, ignored"),
                (4, Some("Timer"), "unknown section, its keys are ignored"),
                (10, Some("ConditionVirtualization"), "unknown key, ignored"),
            ]
        );
        let w = warnings("[Unit]\nConditionVirtualization=kvm\n[Service]\nExecStart=/a\n");
        assert_eq!(w, [(2, Some("ConditionVirtualization"), "unsupported condition, ignored: the unit starts as if it held")]);
        let w = warnings("[Service]\nExecStart=/a\nCapabilityBoundingSet=CAP_NET_RAW CAP_FUTURE\n");
        assert_eq!(w, [(3, Some("CapabilityBoundingSet"), "unknown capability, ignored")]);
    }

    #[test]
    fn specifiers() {
        let w = warnings("[Service]\nExecStart=/bin/echo %n %H\nEnvironment=A=50%\nMemoryMax=50%\n");
        assert_eq!(
            w,
            [
                (2, Some("ExecStart"), "unsupported % specifier, left as written"),
                (3, Some("Environment"), "'%' at the end of the value (write %% for a literal %)"),
            ]
        );
        // %h (home) is not supported, so the path is not absolute.
        assert_eq!(err("[Service]\nWorkingDirectory=%h\n").message, "expected an absolute path");

        let mut out = [0u8; 128];
        let name = "serial-getty@ttyS0.service";
        let x = expand_specifiers("%n|%N|%p|%i|%I|%t|%%|%H|%", name, &mut out).unwrap();
        assert_eq!(x, b"serial-getty@ttyS0.service|serial-getty@ttyS0|serial-getty|ttyS0|ttyS0|/run|%|%H|%");
        let x = expand_specifiers("/dev/%I %P", "x-y@dev-ttyS0.service", &mut out).unwrap();
        assert_eq!(x, b"/dev/dev/ttyS0 x/y");
        let x = expand_specifiers("%I", "a@b\\x2dc.service", &mut out).unwrap();
        assert_eq!(x, b"b-c");
        let x = expand_specifiers("%i.%p", "plain.service", &mut out).unwrap();
        assert_eq!(x, b".plain");
        let mut small = [0u8; 26];
        assert_eq!(expand_specifiers("%n", name, &mut small).unwrap(), name.as_bytes());
        assert!(expand_specifiers("%n.", name, &mut small).is_none(), "too small");
    }

    #[test]
    fn unit_names() {
        for good in ["a.service", "foo-bar_baz.service", "getty@ttyS0.service", "a:b.c.service", "x\\x2d.service"] {
            assert!(valid_unit_name(good), "{good}");
        }
        let long = format!("{}.service", "a".repeat(UNIT_NAME_BYTES - 7));
        for bad in [".service", "a", "a.target", "a b.service", "a@.service", "@a.service", "a@b@c.service", "ä.service", long.as_str()] {
            assert!(!valid_unit_name(bad), "{bad}");
        }
        assert!(valid_unit_name(&long[1..]));
        assert_eq!(service_name("foo.service"), Some("foo"));
        assert_eq!(service_name("foo.socket"), None);
    }

    #[test]
    fn time_spans() {
        let cases = [
            ("5", 5000),
            ("5s", 5000),
            ("500ms", 500),
            ("1min 30s", 90_000),
            ("2h30m", 9_000_000),
            ("1.5s", 1500),
            ("0.5", 500),
            ("1 sec", 1000),
            ("100us", 1),
            ("0", 0),
            ("1d", 86_400_000),
            ("1w 1y", 604_800_000 + 31_557_600_000),
        ];
        for (text, ms) in cases {
            assert_eq!(timespan_ms(text), Ok(ms), "{text}");
        }
        assert_eq!(timespan_ms("infinity"), Ok(u64::MAX));
        for bad in ["", "s", "1.2.3", "5 s s", "1x", "-1", "1e3", "99999999999999999999y", ".", "5:00"] {
            assert!(timespan_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capability_merging_follows_systemd() {
        let set = |lines: &str| ok(&format!("[Service]\nExecStart=/a\n{lines}")).capability_bounding_set;
        let net_raw = 1u64 << 13;
        let chown = 1u64;
        assert_eq!(set("CapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=CAP_NET_RAW\n"), Some(chown | net_raw));
        assert_eq!(set("CapabilityBoundingSet=~CAP_CHOWN\n"), Some(CAP_ALL & !chown));
        assert_eq!(set("CapabilityBoundingSet=CAP_CHOWN CAP_NET_RAW\nCapabilityBoundingSet=~CAP_CHOWN\n"), Some(net_raw));
        assert_eq!(set("CapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=\n"), Some(0));
        assert_eq!(set("CapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=~\n"), Some(CAP_ALL));
        assert_eq!(set("CapabilityBoundingSet=CAP_CHECKPOINT_RESTORE 0\n"), Some(1 << 40 | 1));
        let amb = |lines: &str| ok(&format!("[Service]\nExecStart=/a\n{lines}")).ambient_capabilities;
        assert_eq!(amb("AmbientCapabilities=CAP_CHOWN\nAmbientCapabilities=CAP_NET_RAW\n"), chown | net_raw);
        assert_eq!(amb("AmbientCapabilities=~CAP_CHOWN\n"), CAP_ALL & !chown);
        assert_eq!(amb("AmbientCapabilities=CAP_CHOWN\nAmbientCapabilities=\n"), 0);
        assert_eq!(CAPABILITIES.len(), 41);
        assert_eq!(capability_number("CAP_BPF"), Some(39));
        assert_eq!(capability_number("BPF"), None);
        assert_eq!(capability_number("41"), None);
    }

    #[test]
    fn values() {
        assert_eq!(signal_number("SIGUSR1"), Some(10));
        assert_eq!(signal_number("USR2"), Some(12));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("0"), None);
        assert_eq!(signal_number("sigterm"), None, "systemd's names are upper case");
        assert_eq!(size_bytes("1.5G"), Some(3 << 29));
        assert_eq!(size_bytes("512"), Some(512));
        assert_eq!(size_bytes("4 KB"), Some(4096));
        assert_eq!(size_bytes("16E"), None, "overflows u64");
        let u = ok("[Service]\nExecStart=/a\nStandardOutput=journal+console\nStandardError=null\nNice=+19\nMemoryMax=infinity\nTasksMax=512\nUMask=7\nLimitCORE=0\n");
        assert_eq!((u.stdout, u.stderr), (StdOut::Kmsg, StdOut::Null));
        assert_eq!(u.nice, Some(19));
        assert_eq!(u.memory_max, Some(Limit::Infinity));
        assert_eq!(u.tasks_max, Some(Limit::Count(512)));
        assert_eq!(u.umask, Some(7));
        assert_eq!(u.limit_core, Some(Rlimit { soft: 0, hard: 0 }));
        let u = ok("[Service]\nExecStart=/a\nStandardInput=tty\n");
        assert_eq!((u.stdout, u.stderr), (StdOut::Inherit, StdOut::Inherit), "a tty on stdin is the default output");
        let u = ok("[Service]\nExecStart=/a\nStandardOutput=null\nStandardOutput=\n");
        assert_eq!(u.stdout, StdOut::Kmsg, "an empty assignment restores the default");
        let u = ok("[Service]\nExecStart=/a\nStandardInput=tty\nStandardOutput=truncate:/log\nTimeoutSec=3\n");
        assert_eq!(u.stdout, StdOut::Truncate("/log"));
        assert_eq!((u.timeout_start_ms, u.timeout_stop_ms), (3000, 3000));
    }

    #[test]
    fn restart_table() {
        use Exit::*;
        let exits = [Code(0), Code(1), Signal(15), Signal(9), Timeout, Watchdog];
        let table: &[(Restart, [bool; 6])] = &[
            (Restart::No, [false; 6]),
            (Restart::Always, [true; 6]),
            (Restart::OnSuccess, [true, false, true, false, false, false]),
            (Restart::OnFailure, [false, true, false, true, true, true]),
            (Restart::OnAbnormal, [false, false, false, true, true, true]),
            (Restart::OnAbort, [false, false, false, true, false, false]),
            (Restart::OnWatchdog, [false, false, false, false, false, true]),
        ];
        for (r, expect) in table {
            for (e, want) in exits.iter().zip(expect) {
                assert_eq!(r.applies(*e), *want, "{r:?} {e:?}");
            }
        }
    }

    #[test]
    fn conditions() {
        let c = |path, negate, trigger| Condition { path, negate, trigger };
        let exists = |p: &str| p.starts_with("/yes");
        assert!(conditions_hold(&[], &exists));
        assert!(conditions_hold(&[c("/yes", false, false), c("/no", true, false)], &exists));
        assert!(!conditions_hold(&[c("/no", false, false)], &exists));
        assert!(conditions_hold(&[c("/no", false, true), c("/yes2", false, true)], &exists));
        assert!(!conditions_hold(&[c("/no", false, true), c("/yes", true, true)], &exists));
    }

    /// xorshift64*: deterministic bytes for the garbage tests.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let alphabet = b"[]=\\\n\r #;%$'\"~!|-@+:/aZ09.\xff\x00\tServiceUnitExecStart";
        for round in 0..20_000 {
            let len = (rng(&mut seed) % 300) as usize;
            let mut buf: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng(&mut seed);
                    if round % 2 == 0 { alphabet[(r % alphabet.len() as u64) as usize] } else { r as u8 }
                })
                .collect();
            let _ = parse(&mut buf);
        }
        // Mutations of real files: every key handler sees damaged values.
        for fixture in [SSH, CRON, GETTY, NGINX] {
            for _ in 0..2_000 {
                let mut buf = fixture.as_bytes().to_vec();
                for _ in 0..3 {
                    let r = rng(&mut seed);
                    let i = (r % buf.len() as u64) as usize;
                    buf[i] = alphabet[((r >> 32) % alphabet.len() as u64) as usize];
                }
                let _ = parse(&mut buf);
            }
        }
    }

    #[test]
    fn container_keys() {
        let u = ok("[Service]\nExecStart=/bin/sh\nRootImage=/data/c.img\nPrivatePIDs=yes\nPrivateNetwork=yes\n\
PrivateUsers=yes\nPrivateIPC=on\nHostname=box\nBindPaths=/data/x:/x -/nope\nBindReadOnlyPaths=/etc/ssl\n\
TemporaryFileSystem=/var:size=1M\nPrivateMounts=yes\n");
        assert_eq!(u.root_image, Some("/data/c.img"));
        assert_eq!(u.private_pids, PrivatePids::Yes);
        assert!(u.private_network && u.private_ipc && u.private_mounts);
        assert_eq!(u.private_users, Some(crate::container_spec::DEFAULT_ID_RANGE));
        assert_eq!(u.hostname, Some("box"));
        assert_eq!(u.bind_paths.as_slice(), ["/data/x:/x -/nope"]);
        assert_eq!(u.bind_read_only_paths.as_slice(), ["/etc/ssl"]);
        assert_eq!(u.temporary_file_system.as_slice(), ["/var:size=1M"]);
        let d = ok("[Service]\nExecStart=/sbin/init\nRootDirectory=/srv/c\nPrivatePIDs=init\nPrivateUsers=200000:1000\n");
        assert_eq!(d.root_directory, Some("/srv/c"));
        assert_eq!(d.private_pids, PrivatePids::Init);
        assert_eq!(d.private_users, Some(crate::container_spec::IdRange { first: 200_000, count: 1000 }));
        // Empty assignments reset.
        let r = ok("[Service]\nExecStart=/bin/sh\nBindPaths=/a\nBindPaths=\nHostname=x\nHostname=\nPrivatePIDs=yes\nPrivatePIDs=no\n");
        assert!(r.bind_paths.is_empty() && r.hostname.is_none() && r.private_pids == PrivatePids::No);
    }

    #[test]
    fn container_key_errors_name_line_and_key() {
        let cases: [(&str, u32, &str); 7] = [
            ("[Service]\nExecStart=/bin/sh\nRootImage=c.img\n", 3, "RootImage"),
            ("[Service]\nExecStart=/bin/sh\nPrivatePIDs=maybe\n", 3, "PrivatePIDs"),
            ("[Service]\nExecStart=/bin/sh\nPrivateUsers=0:10\n", 3, "PrivateUsers"),
            ("[Service]\nExecStart=/bin/sh\nHostname=a b\n", 3, "Hostname"),
            ("[Service]\nExecStart=/bin/sh\n\nBindPaths=/a:../b\n", 4, "BindPaths"),
            ("[Service]\nExecStart=/bin/sh\nTemporaryFileSystem=var\n", 3, "TemporaryFileSystem"),
            ("[Service]\nRootDirectory=/srv\nExecStart=/bin/sh\nRootImage=/c.img\n", 4, "RootImage"),
        ];
        for (text, line, key) in cases {
            let d = err(text);
            assert_eq!((d.line, d.key), (line, Some(key)), "{text}");
        }
        let many = "[Service]\nExecStart=/bin/sh\n".to_string() + &"BindPaths=/a\n".repeat(MAX_MOUNT_LINES + 1);
        assert_eq!(err(&many).line, 2 + MAX_MOUNT_LINES as u32 + 1);
    }
}
