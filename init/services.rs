//! The service manager: units from /etc/autoinit/services, each in its own cgroup, started in
//! dependency order, restarted with backoff, their output sent to /dev/kmsg, controlled over
//! /run/autoinit/control. One loop, one wait (ppoll), fixed tables.
//!
//! Memory: the table holds at most [`MAX_SERVICES`] units of a few hundred bytes each; a unit
//! file is parsed into stack memory when it is (re)loaded and at each start (whose first
//! child, a fork, uses that parse; later commands parse it in their child, see
//! [`crate::spawn`]), so PID 1 keeps only what it needs to decide.

use crate::boot::Path;
use crate::control_proto::{self as proto, Request};
use crate::log::{Level, Line, Log, Piece};
use crate::text::Write as _;
use crate::outlog::{self, LinePool, RateLimit};
use crate::restart::{Backoff, Decision};
use crate::shutdown::Action;
use crate::spawn::{self, Which};
use crate::unit::{self, Restart, ServiceType};
use crate::watchdog::Watchdog;
use crate::{cgroup, notify_msg, persist, rescue, sha256};
use heapless::{String, Vec};
use syscall::fs::{self, Dirents, OFlags};
use syscall::mm::{AnonMap, MapVec};
use syscall::io::{self, PollFd, POLLIN};
use syscall::net::{self, SocketType};
use syscall::process::{self, ArgList, Fork, Pid, WaitFlags, WaitStatus};
use syscall::signal::{self, Signal};
use syscall::time::{self, Clock, Timespec};
use syscall::{Errno, OwnedFd};

/// Units loaded at most; more files are reported and ignored.
pub const MAX_SERVICES: usize = 128;
/// Control connections served at the same time; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 4;
/// A service output line longer than this is cut.
pub const OUT_LINE_BYTES: usize = 200;
/// Units whose output may end mid-line at the same time (see [`LinePool`]); for more, an
/// unfinished line is logged as it is.
pub const OUT_PARTIALS: usize = 16;
/// After SIGKILL, how long to wait for a group to empty before giving up on it.
pub const KILL_WAIT_MS: u64 = 5_000;
/// A control client must send its request within this time.
pub const CLIENT_TIMEOUT_MS: u64 = 5_000;
/// A control request waiting for a start or stop is answered after at most this long.
pub const PENDING_TIMEOUT_MS: u64 = 120_000;
/// The whole orderly stop of services at shutdown, after which the rest is killed.
pub const SHUTDOWN_STOP_MS: u64 = 120_000;
/// A control response (the status table of 128 units fits).
pub const RESPONSE_BYTES: usize = 16384;
pub const CONTROL_SOCKET: &core::ffi::CStr = c"/run/autoinit/control";
const NOTIFY_SOCKET_C: &core::ffi::CStr = c"/run/autoinit/notify";
/// How long a child's exit code stays in `status`, for its LAST-EXIT column.
const RESCUE_RESPAWN_MS: u64 = 2000;
/// PID 1's text and dead stack pages are released (see [`Manager::release_pages`]) at most
/// this often.
const TEXT_RELEASE_GAP_MS: u64 = 10_000;
/// A reap pass (`wait4(-1, WNOHANG)` until nothing is left) costs the kernel a walk of PID 1's
/// children for each call: with thousands of orphans exiting, PID 1 spent about 2 ms of CPU
/// per reap under TCG (see `reap_neighbours` for the other half of the fix). So a pass that reaped an orphan is followed by a pause of `ORPHAN_PAUSE_MS`, and
/// one that cost more CPU than `REAP_CHEAP_NS` by a pause of `REAP_PAUSE_FACTOR` times its cost
/// (at most `REAP_PAUSE_MAX_MS`), in which the signalfd is not polled: exits only queue one
/// SIGCHLD, and the pass after the pause reaps them all. A cheap pass that reaped only units'
/// processes (every usual case) is never followed by a pause.
const ORPHAN_PAUSE_MS: u64 = 20;
/// How many pids in a row next to a reaped orphan may be something else than an exited child
/// before `reap_neighbours` stops trying that direction.
const NEIGHBOUR_MISSES: u32 = 32;
const REAP_CHEAP_NS: u64 = 300_000;
const REAP_PAUSE_FACTOR: u64 = 10;
const REAP_PAUSE_MAX_MS: u64 = 250;

/// A set of unit indices.
#[derive(Copy, Clone, Default, PartialEq, Eq)]
pub struct Bits([u64; MAX_SERVICES / 64]);

impl Bits {
    pub fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub fn clear(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }
    pub fn has(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_SERVICES).filter(|&i| self.has(i))
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum State {
    /// Not running and not wanted (never started, or stopped on request).
    Inactive,
    /// Wanted; waiting for the units it comes After.
    Waiting,
    /// An ExecStartPre= command runs.
    StartPre,
    /// notify: the main process runs, no READY=1 yet; oneshot: an ExecStart= command runs.
    Starting,
    /// The main process runs (and said READY=1, for notify).
    Running,
    /// A oneshot unit whose commands all succeeded.
    Done,
    /// ExecStop= or the kill signal was sent; waiting for the group to empty.
    Stopping,
    /// Exited; restarting after the backoff delay.
    Backoff,
    /// Gave up (see `reason`).
    Failed,
    /// A Condition*= did not hold.
    Skipped,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Waiting => "waiting",
            State::StartPre | State::Starting => "starting",
            State::Running => "running",
            State::Done => "exited",
            State::Stopping => "stopping",
            State::Backoff => "restarting",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }

    /// Started for the units that come After it: they may go.
    fn settled(self) -> bool {
        matches!(self, State::Running | State::Done | State::Failed | State::Skipped | State::Backoff | State::Inactive)
    }
}

/// What PID 1 keeps of a unit file.
#[derive(Copy, Clone)]
struct Config {
    kind: ServiceType,
    restart: Restart,
    restart_sec_ms: u64,
    kill_signal: Signal,
    timeout_stop_ms: u64,
    /// Type=notify: READY=1 must come within this (TimeoutStartSec=).
    timeout_start_ms: u64,
    n_pre: u8,
    n_start: u8,
    n_stop: u8,
    /// Bit i: command i may fail ('-' prefix).
    pre_ignore: u8,
    start_ignore: u8,
    /// stdout or stderr goes to kmsg through PID 1.
    kmsg: bool,
    /// ExecStart= is forked with these `CLONE_NEW*` flags (PrivatePIDs=: a new pid namespace).
    clone_flags: u64,
}

fn ignore_bits(list: &[unit::Command<'_>]) -> u8 {
    list.iter().enumerate().fold(0, |m, (i, c)| if c.ignore_failure && i < 8 { m | 1 << i } else { m })
}

impl Config {
    fn of(u: &unit::Unit<'_>) -> Config {
        Config {
            kind: u.service_type,
            restart: u.restart,
            restart_sec_ms: u.restart_sec_ms,
            kill_signal: Signal(u.kill_signal),
            timeout_stop_ms: u.timeout_stop_ms,
            timeout_start_ms: u.timeout_start_ms,
            n_pre: u.exec_start_pre.len() as u8,
            n_start: u.exec_start.len() as u8,
            n_stop: u.exec_stop.len() as u8,
            pre_ignore: ignore_bits(&u.exec_start_pre),
            start_ignore: ignore_bits(&u.exec_start),
            // `inherit` is the tty when stdin is one (spawn::open_output), kmsg otherwise.
            kmsg: match u.stdout {
                unit::StdOut::Kmsg => true,
                unit::StdOut::Inherit => u.stdin != unit::StdIn::Tty,
                _ => false,
            } || matches!(u.stderr, unit::StdOut::Kmsg),
            clone_flags: crate::container_spec::clone_flags(u),
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum LastExit {
    None,
    Code(u8),
    Signal(Signal),
}

impl From<WaitStatus> for LastExit {
    fn from(s: WaitStatus) -> LastExit {
        match (s.exit_code(), s.signal()) {
            (Some(c), _) => LastExit::Code(c),
            (None, Some(sig)) => LastExit::Signal(sig),
            _ => LastExit::None,
        }
    }
}

impl LastExit {
    fn as_unit_exit(self) -> unit::Exit {
        match self {
            LastExit::Code(c) => unit::Exit::Code(c),
            LastExit::Signal(s) => unit::Exit::Signal(s.0),
            LastExit::None => unit::Exit::Code(0),
        }
    }

    fn clean(self) -> bool {
        match self {
            LastExit::Code(c) => c == 0,
            // systemd's clean signals for Restart=on-failure.
            LastExit::Signal(s) => matches!(s, Signal::HUP | Signal::INT | Signal::TERM | Signal::PIPE),
            LastExit::None => true,
        }
    }
}

struct Service {
    name: String<64>,
    /// First 16 bytes of the unit file's SHA-256: `reload` restarts a unit whose file changed.
    hash: [u8; 16],
    cfg: Config,
    after: Bits,
    requires: Bits,
    /// A Requires= names a unit that does not exist (its name is read again from the file
    /// for the failure reason: [`Manager::missing_require_reason`]).
    missing_require: bool,
    state: State,
    /// The manager wants it up (false: stop it, or leave it stopped).
    goal_up: bool,
    /// Removed by `reload`: forget it once stopped.
    remove: bool,
    /// Start again once stopped (restart, changed by reload).
    restart_after_stop: bool,
    /// Index of the command running in StartPre/Starting(oneshot)/Stopping.
    step: u8,
    main: Option<Pid>,
    /// The ExecStartPre=/ExecStop= command running.
    ctl: Option<Pid>,
    deadline: Option<u64>,
    /// Since when it is Running/Done (ms, monotonic).
    since: u64,
    restarts: u32,
    last_exit: LastExit,
    backoff: Backoff,
    out: Option<OwnedFd>,
    /// The pipe's write end, handed to each command while the unit is up, so that its
    /// commands share one pipe and a restart does not cut the output of what is left.
    out_w: Option<OwnedFd>,
    out_pid: Pid,
    /// Its slot in [`Manager::partials`] while its output ends mid-line.
    partial: Option<u8>,
    rate: RateLimit,
    /// STATUS= of a notify service, or why it failed.
    note: String<80>,
    /// The group still had processes when last checked.
    populated: bool,
    /// Escalated to SIGKILL already during this stop.
    killed: bool,
}

impl Service {
    fn new(name: &str, hash: [u8; 16], cfg: Config) -> Service {
        let mut n = String::new();
        let _ = n.push_str(name);
        Service {
            name: n,
            hash,
            cfg,
            after: Bits::default(),
            requires: Bits::default(),
            missing_require: false,
            state: State::Inactive,
            goal_up: true,
            remove: false,
            restart_after_stop: false,
            step: 0,
            main: None,
            ctl: None,
            deadline: None,
            since: 0,
            restarts: 0,
            last_exit: LastExit::None,
            backoff: Backoff::new(),
            out: None,
            out_w: None,
            out_pid: Pid(0),
            partial: None,
            rate: RateLimit::new(outlog::LINES_BURST, outlog::LINES_PER_SEC),
            note: String::new(),
            populated: false,
            killed: false,
        }
    }

    fn set_note(&mut self, line: &Line) {
        self.note.clear();
        for &b in line.as_bytes().iter().take(self.note.capacity()) {
            let _ = self.note.push(if b.is_ascii() && !b.is_ascii_control() { b as char } else { '?' });
        }
    }

    fn active(&self) -> bool {
        matches!(self.state, State::StartPre | State::Starting | State::Running | State::Stopping)
            || self.main.is_some()
            || self.ctl.is_some()
    }
}

/// What a control client waits for.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Want {
    Started,
    Stopped,
    /// The end of the upgrade in progress.
    Upgrade,
}

/// How long an upgrade client waits for the commit or the rollback.
pub const UPGRADE_TIMEOUT_MS: u64 = 30 * 60 * 1000;
/// How long a unit restarted by an upgrade has to come back (running, or READY=1).
pub const UPGRADE_STEP_MS: u64 = 120_000;
/// How long each restarted unit must stay up before the next one, unless `--settle` says.
pub const DEFAULT_SETTLE_MS: u64 = 5_000;
/// How long the upgrade waits for a unit's files to be read into the page cache before it
/// stops the unit anyway (`warm.rs`).
pub const WARM_MS: u64 = 10_000;

/// Why the unit directory is read.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Scan {
    /// The first time: every unit is new.
    Boot,
    /// `reload` or SIGHUP: new units start, removed ones stop, changed ones restart.
    Reload,
    /// After an upgrade's swap (or its rollback): as Reload, except that changed units only
    /// take their new definition: the rolling restart restarts them.
    Images,
}

/// Where an on-the-fly upgrade is (docs/upgrade.md).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum UpPhase {
    Idle,
    /// The swap child checks the image, mounts it and swaps it in.
    Swapping,
    /// The unit `order[pos]` was restarted; waiting for it to be running again.
    Restarting,
    /// `order[pos]` is running; it must stay up until the settle time is over.
    Settling,
    /// Swapping the old image back after a failure.
    RollingBack,
    /// Committed; with --persist, the image is being copied to the boot device.
    Persisting,
}

impl UpPhase {
    fn name(self) -> &'static str {
        match self {
            UpPhase::Idle => "idle",
            UpPhase::Swapping => "checking and swapping",
            UpPhase::Restarting => "restarting",
            UpPhase::Settling => "settling",
            UpPhase::RollingBack => "rolling back",
            UpPhase::Persisting => "persisting",
        }
    }
}

struct Upgrade {
    phase: UpPhase,
    path: String<200>,
    persist: bool,
    settle_ms: u64,
    child: Option<Pid>,
    /// Units to restart, in dependency order.
    order: Vec<u8, MAX_SERVICES>,
    pos: usize,
    step_deadline: u64,
    settle_until: u64,
    settle_main: Option<Pid>,
    settle_restarts: u32,
    down_since: u64,
    requested_at: u64,
    /// Why it was rolled back.
    failure: String<160>,
    /// The outcome for the waiting client: (committed, message).
    done: Option<(bool, String<256>)>,
    /// The swap child's reason pipe (`upgrade::read_reason`).
    reason: Option<OwnedFd>,
    /// The child reading `order[warm_pos]`'s files into the page cache (`warm.rs`).
    warm: Option<Pid>,
    /// The position last warmed (or being warmed); `usize::MAX` for none.
    warm_pos: usize,
    /// `order[pos]` is still running: it is stopped once its warm child is done.
    stop_pending: bool,
}

impl Upgrade {
    const fn new() -> Upgrade {
        Upgrade {
            phase: UpPhase::Idle,
            path: String::new(),
            persist: false,
            settle_ms: DEFAULT_SETTLE_MS,
            child: None,
            order: Vec::new(),
            pos: 0,
            step_deadline: 0,
            settle_until: 0,
            settle_main: None,
            settle_restarts: 0,
            down_since: 0,
            requested_at: 0,
            failure: String::new(),
            done: None,
            reason: None,
            warm: None,
            warm_pos: usize::MAX,
            stop_pending: false,
        }
    }
}

fn short<const N: usize>(bytes: &[u8]) -> String<N> {
    let mut s = String::new();
    for &b in bytes {
        if s.push(if b.is_ascii() && !b.is_ascii_control() { b as char } else { '?' }).is_err() {
            break;
        }
    }
    s
}

struct Client {
    fd: OwnedFd,
    req: proto::RequestBuf,
    deadline: u64,
    pending: Option<(String<64>, Want)>,
}

/// Why the loop woke up, for each polled fd.
#[derive(Copy, Clone)]
enum Source {
    Signals,
    Notify,
    Control,
    Client(usize),
    Output(usize),
}

pub struct Manager<'l> {
    log: &'l Log,
    /// The units, in a mapping of their own (see [`MapVec`]): only the pages of the slots in
    /// use are resident, and nothing of it is on the stack.
    svcs: MapVec<Service>,
    cgroups: bool,
    notify: Option<OwnedFd>,
    control: Option<OwnedFd>,
    clients: Vec<Client, MAX_CLIENTS>,
    watchdog: Option<Watchdog>,
    shutdown: Option<(Action, u64)>,
    /// The rescue shell runs on the console (no units, or autoinit.rescue).
    rescue: bool,
    shell: Option<Pid>,
    shell_started: u64,
    shell_respawn_at: Option<u64>,
    shell_env: ArgList<'static, { rescue::MAX_ENV + 2 }>,
    upgrade: Upgrade,
    orphans: u64,
    /// No reap pass, and no signal read, before this time (ms, monotonic): see
    /// [`REAP_CHEAP_NS`].
    reap_not_before: u64,
    /// Children are forked straight into their cgroup (clone3, CLONE_INTO_CGROUP) until the
    /// kernel says it cannot (before Linux 5.7): then they join it themselves.
    clone3: bool,
    changed: bool,
    /// Where `upgrade --persist` writes the image (None: no boot device, nothing to persist to).
    boot_image: Option<persist::BootImage>,
    /// The commit line of an upgrade whose image is being persisted.
    committed: String<160>,
    /// A trial boot of a persisted image (persist.rs): ended or rebooted from here.
    trial: Option<(persist::BootImage, persist::TrialWatch)>,
    /// The units' unfinished output lines.
    partials: LinePool<OUT_LINE_BYTES, OUT_PARTIALS>,
    /// Units changed state since the pages were last released.
    text_dirty: bool,
    text_released_at: Option<u64>,
}

fn now_ms() -> u64 {
    time::clock_gettime(Clock::Monotonic).as_millis()
}

/// Forks a command of unit `name` with the namespace flags `ns_flags`: with `into_cgroup`
/// (cgroups in use, and the kernel has not refused it yet) straight into the unit's group, so
/// that the child need not join it (a write to `cgroup.procs`, which waits for an RCU grace
/// period: the slowest step of a start under TCG). Returns the fork and whether the child is
/// in its group; a kernel without clone3 or CLONE_INTO_CGROUP turns `into_cgroup` off for
/// good, and any other failure of that path falls back to a plain fork whose child joins the
/// group itself (and reports why it could not).
fn fork_unit(name: &str, ns_flags: u64, into_cgroup: &mut bool) -> (Result<Fork, Errno>, bool) {
    if *into_cgroup {
        if let Ok(dir) = cgroup::create(name).and_then(|()| cgroup::open_dir(name)) {
            match process::clone_into_cgroup(ns_flags, &dir) {
                Ok(f) => return (Ok(f), true),
                Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => *into_cgroup = false,
                Err(_) => {}
            }
        }
    }
    let forked = if ns_flags != 0 { process::clone_flags(ns_flags) } else { process::fork() };
    (forked, false)
}

/// Whether every `ConditionPathExists=` of `u` holds now.
fn conditions_hold(u: &unit::Unit<'_>) -> Result<(), Line> {
    for c in &u.conditions {
        let p = Path::of(&[c.path.as_bytes()]).ok_or_else(|| line!("ConditionPathExists=", c.path, ": too long"))?;
        let exists = fs::statx(syscall::BorrowedFd::CWD, p.c(), fs::AtFlags::EMPTY, fs::StatxMask::TYPE).is_ok();
        if exists == c.negate {
            return Err(line!("ConditionPathExists=", if c.negate { "!" } else { "" }, c.path, " is not met"));
        }
    }
    Ok(())
}

fn cpu_ns(t: Timespec) -> u64 {
    u64::try_from(t.sec).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(u64::try_from(t.nsec).unwrap_or(0))
}

/// How long to wait before the next reap pass after one that cost `cost_ns` of CPU.
pub fn reap_pause_ms(cost_ns: u64) -> u64 {
    if cost_ns < REAP_CHEAP_NS {
        return 0;
    }
    cost_ns.saturating_mul(REAP_PAUSE_FACTOR).div_ceil(1_000_000).min(REAP_PAUSE_MAX_MS)
}

/// `NAME` of `NAME.service`, if it is a valid unit file name.
fn unit_name(file: &[u8]) -> Option<&str> {
    let f = core::str::from_utf8(file).ok()?;
    let name = unit::service_name(f)?;
    (!name.is_empty() && name.len() <= 64).then_some(name)
}

impl<'l> Manager<'l> {
    pub fn new(log: &'l Log, shell_env: ArgList<'static, { rescue::MAX_ENV + 2 }>) -> Manager<'l> {
        Manager {
            log,
            svcs: match MapVec::with_capacity(MAX_SERVICES) {
                Ok(t) => t,
                Err(e) => {
                    log!(log, Level::Error, "service table: mmap of ", MAX_SERVICES * core::mem::size_of::<Service>(), " bytes: ", e, "; no units can be loaded");
                    MapVec::empty()
                }
            },
            cgroups: false,
            notify: None,
            control: None,
            clients: Vec::new(),
            watchdog: None,
            shutdown: None,
            rescue: false,
            shell: None,
            shell_started: 0,
            shell_respawn_at: None,
            shell_env,
            upgrade: Upgrade::new(),
            orphans: 0,
            reap_not_before: 0,
            clone3: true,
            changed: true,
            trial: None,
            boot_image: None,
            committed: String::new(),
            partials: LinePool::new(),
            text_dirty: true,
            text_released_at: None,
        }
    }

    /// The boot device's image, for `upgrade --persist`.
    pub fn set_boot_image(&mut self, bi: Option<persist::BootImage>) {
        self.boot_image = bi;
    }

    /// This is a trial boot of `bi`: end the trial once every unit has been healthy for
    /// [`persist::TRIAL_SETTLE_MS`], reboot if a unit fails or they are not healthy within
    /// [`persist::TRIAL_TIMEOUT_MS`] (the boot stage counts the tries).
    pub fn watch_trial(&mut self, bi: persist::BootImage) {
        let w = persist::TrialWatch::new(now_ms(), persist::TRIAL_SETTLE_MS, persist::TRIAL_TIMEOUT_MS);
        self.trial = Some((bi, w));
    }

    #[inline(never)]
    fn check_trial(&mut self, now: u64) {
        if self.shutdown.is_some() || self.trial.is_none() {
            return;
        }
        let failed = self.svcs.iter().position(|s| s.state == State::Failed);
        let healthy = self.svcs.iter().all(|s| matches!(s.state, State::Running | State::Done | State::Skipped | State::Inactive));
        let Some((bi, w)) = &mut self.trial else { return };
        match w.step(now, healthy, failed.is_some()) {
            persist::TrialStep::Wait | persist::TrialStep::Done => {}
            persist::TrialStep::Healthy => {
                let _ = persist::end_trial(self.log, bi);
                self.trial = None;
            }
            persist::TrialStep::Failed(why) => {
                let unit = failed.and_then(|i| self.svcs.get(i)).map(|s| s.name.as_str());
                let image = bi.file("").unwrap_or_default();
                log!(self.log, Level::Error, "trial boot of ", image, " failed: ", why, if unit.is_some() { " (" } else { "" },
                     unit.unwrap_or(""), if unit.is_some() { ")" } else { "" }, "; rebooting");
                self.trial = None;
                self.begin_shutdown(Action::Reboot, "failed trial boot");
            }
        }
    }

    /// The rescue shell's environment (the kernel's, with our PATH).
    pub fn shell_env(&self) -> &ArgList<'static, { rescue::MAX_ENV + 2 }> {
        &self.shell_env
    }

    pub fn set_watchdog(&mut self, w: Option<Watchdog>) {
        self.watchdog = w;
    }

    /// Loads the units (stage 2). Returns how many were loaded.
    pub fn load(&mut self) -> usize {
        self.cgroups = cgroup::setup(self.log);
        self.open_sockets();
        let (added, _, _) = self.scan(Scan::Boot);
        if added > 0 {
            log!(self.log, Level::Info, "services: ", added, " units loaded from ", spawn::UNIT_DIR);
        }
        self.svcs.len()
    }

    /// The manager runs the rescue shell on the console as well.
    pub fn with_rescue_shell(&mut self) {
        self.rescue = true;
        self.shell_respawn_at = Some(0);
    }

    fn open_sockets(&mut self) {
        let _ = fs::mkdirat(syscall::BorrowedFd::CWD, c"/run/autoinit", 0o755);
        match listen_socket(SocketType::Datagram, NOTIFY_SOCKET_C, 0o777) {
            Ok(fd) => {
                if let Err(e) = net::set_passcred(&fd, true) {
                    log!(self.log, Level::Error, "SO_PASSCRED on ", NOTIFY_SOCKET_C, ": ", e, "; Type=notify services cannot be told apart");
                }
                self.notify = Some(fd);
            }
            Err(e) => log!(self.log, Level::Error, "notify socket ", NOTIFY_SOCKET_C, ": ", e, "; Type=notify services will time out"),
        }
        // Everyone may connect, so that a non-root client gets a reason; only root
        // (SO_PEERCRED) is served.
        match listen_socket(SocketType::Stream, CONTROL_SOCKET, 0o666) {
            Ok(fd) => self.control = Some(fd),
            Err(e) => log!(self.log, Level::Error, "control socket ", CONTROL_SOCKET, ": ", e, "; `autoinit status` and friends will not work"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Loading and reloading

    /// Reads the unit directory. Adds new units, and with `reload` marks changed units for a
    /// restart and vanished ones for removal. Returns (added, changed, removed).
    fn scan(&mut self, mode: Scan) -> (usize, usize, usize) {
        let log = self.log;
        let mut seen = Bits::default();
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let mut too_many = 0usize;
        let dir = match fs::open(c"/etc/autoinit/services", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) {
            Ok(fd) => Some(fd),
            Err(Errno::ENOENT) => {
                log!(log, Level::Info, "no ", spawn::UNIT_DIR, ": no services");
                None
            }
            Err(e) => {
                log!(log, Level::Error, "open ", spawn::UNIT_DIR, ": ", e);
                None
            }
        };
        let mut dbuf = [0u8; 2048];
        while let Some(d) = &dir {
            let n = match fs::getdents64(d, &mut dbuf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    log!(log, Level::Error, "read ", spawn::UNIT_DIR, ": ", e);
                    break;
                }
            };
            for ent in Dirents::new(dbuf.get(..n).unwrap_or(&[])) {
                let file = ent.name.to_bytes();
                if file.first() == Some(&b'.') {
                    continue;
                }
                let Some(name) = unit_name(file) else {
                    if file.ends_with(b".service") {
                        log!(log, Level::Warn, spawn::UNIT_DIR, "/", file, ": not a valid unit name; ignored");
                    }
                    continue;
                };
                let existing = self.find(name);
                let Some(loaded) = self.load_unit(name, true) else { continue };
                match existing {
                    Some(i) => {
                        seen.set(i);
                        if let Some(s) = self.svcs.get_mut(i) {
                            if s.remove {
                                // Removed, then back before it was forgotten.
                                s.remove = false;
                                s.goal_up = true;
                            }
                            if s.hash != loaded.0 {
                                s.hash = loaded.0;
                                s.cfg = loaded.1;
                                changed += 1;
                                if mode == Scan::Images {
                                    // The upgrade restarts the running units itself, with
                                    // the definition now in place.
                                } else if s.active() {
                                    s.restart_after_stop = true;
                                    s.goal_up = false;
                                } else if s.goal_up || matches!(s.state, State::Failed | State::Skipped) {
                                    s.goal_up = true;
                                    s.backoff.reset();
                                    s.state = State::Waiting;
                                }
                            }
                        }
                    }
                    None => {
                        let s = Service::new(name, loaded.0, loaded.1);
                        match self.svcs.push(s) {
                            Ok(()) => {
                                seen.set(self.svcs.len() - 1);
                                added += 1;
                                if let Some(s) = self.svcs.last_mut() {
                                    s.state = State::Waiting;
                                }
                            }
                            Err(_) => too_many += 1,
                        }
                    }
                }
            }
        }
        if too_many > 0 {
            log!(log, Level::Error, "services: more than ", self.svcs.capacity(), " units: ", too_many, " not loaded");
        }
        if mode != Scan::Boot {
            for (i, s) in self.svcs.iter_mut().enumerate() {
                if !seen.has(i) && !s.remove {
                    s.remove = true;
                    s.goal_up = false;
                    s.restart_after_stop = false;
                    removed += 1;
                }
            }
        }
        self.resolve_deps();
        self.changed = true;
        (added, changed, removed)
    }

    /// Reads and parses `NAME.service`; reports its problems. None if it cannot be used.
    fn load_unit(&self, name: &str, report: bool) -> Option<([u8; 16], Config)> {
        let log = self.log;
        let mut text = [0u8; unit::UNIT_FILE_BYTES];
        let n = match spawn::read_unit_file(name, &mut text) {
            Ok(n) => n,
            Err(e) => {
                log!(log, Level::Error, spawn::UNIT_DIR, "/", name, ".service: ", e, if e == Errno::EFBIG { " (larger than 8 KiB)" } else { "" });
                return None;
            }
        };
        let digest = sha256::digest(text.get(..n).unwrap_or(&[]));
        let mut hash = [0u8; 16];
        for (d, s) in hash.iter_mut().zip(digest.iter()) {
            *d = *s;
        }
        let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
        if report {
            for w in &parsed.warnings {
                log!(log, Level::Warn, spawn::UNIT_DIR, "/", name, ".service:", w.line, ": ", w.key.unwrap_or(""), if w.key.is_some() { ": " } else { "" }, w.message);
            }
            if parsed.dropped_warnings > 0 {
                log!(log, Level::Warn, spawn::UNIT_DIR, "/", name, ".service: ", u32::from(parsed.dropped_warnings), " more warnings");
            }
        }
        match parsed.unit {
            Ok(u) => {
                if u.exec_start.is_empty() {
                    log!(log, Level::Error, spawn::UNIT_DIR, "/", name, ".service: no ExecStart=; unit not loaded");
                    return None;
                }
                if u.service_type != ServiceType::Oneshot && u.exec_start.len() > 1 {
                    log!(log, Level::Error, spawn::UNIT_DIR, "/", name, ".service: more than one ExecStart= needs Type=oneshot; unit not loaded");
                    return None;
                }
                Some((hash, Config::of(&u)))
            }
            Err(d) => {
                log!(log, Level::Error, spawn::UNIT_DIR, "/", name, ".service:", d.line, ": ", d.key.unwrap_or(""), if d.key.is_some() { ": " } else { "" }, d.message, "; unit not loaded");
                None
            }
        }
    }

    /// Resolves After=/Requires=/Wants= names to indices, and breaks ordering cycles.
    fn resolve_deps(&mut self) {
        let log = self.log;
        let count = self.svcs.len();
        for i in 0..count {
            let Some(name) = self.svcs.get(i).map(|s| s.name.clone()) else { continue };
            let mut text = [0u8; unit::UNIT_FILE_BYTES];
            let Ok(n) = spawn::read_unit_file(&name, &mut text) else { continue };
            let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
            let Ok(u) = parsed.unit else { continue };
            let mut after = Bits::default();
            let mut requires = Bits::default();
            let mut missing = false;
            for (list, is_req) in [(&u.after, false), (&u.requires, true), (&u.wants, false)] {
                for dep in list.iter() {
                    let dep_name = unit::service_name(dep).unwrap_or(dep);
                    match self.find(dep_name) {
                        Some(j) if j != i => {
                            if is_req {
                                requires.set(j);
                            }
                        }
                        Some(_) => {}
                        None if is_req => missing = true,
                        None => {}
                    }
                }
            }
            for dep in u.after.iter() {
                let dep_name = unit::service_name(dep).unwrap_or(dep);
                if let Some(j) = self.find(dep_name) {
                    if j != i {
                        after.set(j);
                    }
                }
            }
            if let Some(s) = self.svcs.get_mut(i) {
                s.after = after;
                s.requires = requires;
                s.missing_require = missing;
            }
        }
        // Kahn's algorithm; whatever is left is in a cycle: drop one edge and try again.
        for _ in 0..MAX_SERVICES {
            let mut done = Bits::default();
            let mut progress = true;
            while progress {
                progress = false;
                for (i, s) in self.svcs.iter().enumerate() {
                    if !done.has(i) && s.after.iter().all(|j| done.has(j) || j >= count) {
                        done.set(i);
                        progress = true;
                    }
                }
            }
            let Some(i) = (0..count).find(|&i| !done.has(i)) else { return };
            let Some(j) = self.svcs.get(i).and_then(|s| s.after.iter().find(|&j| !done.has(j))) else { return };
            let other = self.svcs.get(j).map(|s| s.name.clone()).unwrap_or_default();
            if let Some(s) = self.svcs.get_mut(i) {
                log!(log, Level::Warn, s.name.as_str(), ": ordering cycle with ", other.as_str(), ": ignoring ", s.name.as_str(), " After=", other.as_str());
                s.after.clear(j);
            }
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        // Not unit::service_name(): this runs in the main loop, and unit.rs's code is placed
        // with the code it does not run (linker/ARCH.ld). A name that is not valid matches no
        // unit either way.
        let name = name.strip_suffix(".service").unwrap_or(name);
        self.svcs.iter().position(|s| s.name.as_str() == name)
    }

    // -----------------------------------------------------------------------------------------
    // The loop

    pub fn run(&mut self, sigfd: Option<OwnedFd>) -> ! {
        let mut pfds = [PollFd::default(); 3 + MAX_CLIENTS + MAX_SERVICES];
        let mut srcs = [Source::Signals; 3 + MAX_CLIENTS + MAX_SERVICES];
        loop {
            let now = now_ms();
            self.advance(now);
            self.check_trial(now);
            if let Some(w) = &mut self.watchdog {
                w.pet_if_due(now);
            }
            self.rescue_shell(now);
            self.release_pages(now);
            // Build the poll set.
            let mut n = 0usize;
            let mut add = |fd: &OwnedFd, src: Source, pfds: &mut [PollFd], srcs: &mut [Source]| {
                if let (Some(p), Some(s)) = (pfds.get_mut(n), srcs.get_mut(n)) {
                    *p = PollFd::new(fd, POLLIN);
                    *s = src;
                    n += 1;
                }
            };
            // In a reap pause signals wait (the pause ends with a deadline).
            let reap_paused = now_ms() < self.reap_not_before;
            if let (Some(fd), false) = (&sigfd, reap_paused) {
                add(fd, Source::Signals, &mut pfds, &mut srcs);
            }
            if let Some(fd) = &self.notify {
                add(fd, Source::Notify, &mut pfds, &mut srcs);
            }
            if self.clients.len() < MAX_CLIENTS {
                if let Some(fd) = &self.control {
                    add(fd, Source::Control, &mut pfds, &mut srcs);
                }
            }
            for (i, c) in self.clients.iter().enumerate() {
                if c.pending.is_none() {
                    add(&c.fd, Source::Client(i), &mut pfds, &mut srcs);
                }
            }
            for (i, s) in self.svcs.iter().enumerate() {
                if let Some(fd) = &s.out {
                    add(fd, Source::Output(i), &mut pfds, &mut srcs);
                }
            }
            let timeout = self.next_deadline().map(|t| Timespec::from_millis(t.saturating_sub(now_ms())));
            let ready = match io::ppoll(pfds.get_mut(..n).unwrap_or(&mut []), timeout.as_ref(), None) {
                Ok(r) => r,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log!(self.log, Level::Error, "ppoll: ", e);
                    let _ = time::sleep(Timespec::from_millis(200));
                    0
                }
            };
            if ready > 0 {
                // Whatever it handles may run code released with the text: release it again
                // (after the gap) even if no unit changes state.
                self.text_dirty = true;
                for k in 0..n {
                    let (Some(p), Some(src)) = (pfds.get(k), srcs.get(k)) else { continue };
                    if p.revents == 0 {
                        continue;
                    }
                    match *src {
                        Source::Signals => {
                            if let Some(fd) = &sigfd {
                                while let Ok(Some(info)) = signal::read_signalfd(fd) {
                                    self.on_signal(Signal(info.signo));
                                }
                            }
                        }
                        Source::Notify => self.read_notify(),
                        Source::Control => self.accept_clients(),
                        Source::Client(i) => self.read_client(i),
                        Source::Output(i) => self.read_output(i),
                    }
                }
            }
            let now = now_ms();
            if now >= self.reap_not_before {
                self.reap();
            }
            self.expire_clients(now);
            if self.shutdown_ready() {
                self.finish_shutdown(sigfd.as_ref());
            }
        }
    }

    #[inline(never)]
    fn next_deadline(&self) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for s in self.svcs.iter() {
            consider(s.deadline);
            // A group that is still populated after its main process went is re-checked.
            if s.state == State::Stopping && s.main.is_none() && s.ctl.is_none() {
                consider(Some(now_ms().saturating_add(100)));
            }
        }
        for c in &self.clients {
            consider(Some(c.deadline));
        }
        consider(self.watchdog.as_ref().map(|w| w.next_pet()));
        consider(self.shell_respawn_at);
        consider(self.shutdown.map(|(_, t)| t));
        match self.upgrade.phase {
            UpPhase::Restarting => consider(Some(self.upgrade.step_deadline)),
            UpPhase::Settling => consider(Some(self.upgrade.settle_until)),
            _ => {}
        }
        consider(self.trial.as_ref().and_then(|(_, w)| w.next_check()));
        if self.text_dirty && self.quiet() {
            consider(self.text_released_at.map(|t| t.saturating_add(TEXT_RELEASE_GAP_MS)));
        }
        if self.reap_not_before > now_ms() {
            consider(Some(self.reap_not_before));
        }
        if self.changed {
            consider(Some(0));
        }
        next
    }

    /// Every unit has settled and nothing else is under way (no upgrade, no shutdown).
    fn quiet(&self) -> bool {
        !self.changed && self.shutdown.is_none() && self.upgrade.phase == UpPhase::Idle && self.svcs.iter().all(|s| s.state.settled())
    }

    /// Once the units have settled after a burst of work (start-up, reload, restarts), drops
    /// PID 1's text pages and the dead part of its stack from its resident set, at most every
    /// [`TEXT_RELEASE_GAP_MS`]: the code that did the work (loading units) and the stack its
    /// deep frames touched (parsing unit files) stay out until they are used again, and what
    /// the loop runs comes back from the file as it is touched (docs/services.md, "Memory").
    #[inline(never)]
    fn release_pages(&mut self, now: u64) {
        if !self.quiet() {
            self.text_dirty = true;
            return;
        }
        if !self.text_dirty || self.text_released_at.is_some_and(|t| now < t.saturating_add(TEXT_RELEASE_GAP_MS)) {
            return;
        }
        if let Err(e) = syscall::mm::release_text() {
            log!(self.log, Level::Debug, "madvise(MADV_DONTNEED) of the text: ", e);
        }
        if let Err(e) = syscall::mm::release_stack() {
            log!(self.log, Level::Debug, "madvise(MADV_DONTNEED) of the dead stack: ", e);
        }
        self.text_dirty = false;
        self.text_released_at = Some(now);
    }

    // -----------------------------------------------------------------------------------------
    // State changes

    /// Runs every state change that is due: deadlines, starts whose dependencies are ready,
    /// stops at shutdown in reverse order. Repeats while something changed (bounded).
    fn advance(&mut self, now: u64) {
        self.changed = false;
        for _ in 0..8 {
            let mut progress = false;
            for i in 0..self.svcs.len() {
                progress |= self.step_unit(i, now);
            }
            self.forget_removed();
            progress |= self.upgrade_step(now);
            if !progress {
                break;
            }
        }
    }

    /// One unit: returns whether it changed state.
    #[inline(never)]
    fn step_unit(&mut self, i: usize, now: u64) -> bool {
        let Some(s) = self.svcs.get(i) else { return false };
        let state = s.state;
        let deadline_due = s.deadline.is_some_and(|d| d <= now);
        let goal_up = s.goal_up;
        match state {
            State::Waiting if !goal_up => {
                self.set_state(i, State::Inactive);
                true
            }
            State::Waiting => match self.deps_ready(i) {
                Some(Ok(())) => {
                    self.begin_start(i, now);
                    true
                }
                Some(Err(why)) => {
                    self.fail(i, &why);
                    true
                }
                None => false,
            },
            State::Backoff if !goal_up => {
                self.set_state(i, State::Inactive);
                true
            }
            State::Backoff if deadline_due => {
                if let Some(s) = self.svcs.get_mut(i) {
                    s.deadline = None;
                    s.restarts = s.restarts.saturating_add(1);
                }
                self.set_state(i, State::Waiting);
                true
            }
            State::StartPre | State::Starting | State::Running | State::Done if !goal_up => {
                if self.may_stop(i) {
                    self.begin_stop(i, now);
                    true
                } else {
                    false
                }
            }
            State::Starting if deadline_due => {
                let limit = self.svcs.get(i).map_or(0, |s| s.cfg.timeout_start_ms);
                self.note(i, line!("no READY=1 within ", limit, " ms"));
                log!(self.log, Level::Error, self.name(i), ": no READY=1 within ", limit, " ms (TimeoutStartSec=); stopping it");
                if let Some(s) = self.svcs.get_mut(i) {
                    s.restart_after_stop = false;
                    s.deadline = None;
                }
                self.begin_stop(i, now);
                if let Some(s) = self.svcs.get_mut(i) {
                    s.goal_up = matches!(s.cfg.restart, Restart::Always | Restart::OnFailure);
                    s.restart_after_stop = s.goal_up;
                }
                true
            }
            State::Stopping => self.check_stopped(i, now),
            _ => false,
        }
    }

    /// At shutdown a unit stops only after every unit that comes After it has stopped.
    fn may_stop(&self, i: usize) -> bool {
        if self.shutdown.is_none() {
            return true;
        }
        !self.svcs.iter().any(|s| s.after.has(i) && (s.active() || s.state == State::Stopping))
    }

    /// Why unit `i` cannot start: the first name in its Requires= that is not a unit. Read
    /// from the file again, which only this failure needs, instead of kept for every unit.
    #[inline(never)]
    fn missing_require_reason(&self, i: usize) -> Line {
        let mut text = [0u8; unit::UNIT_FILE_BYTES];
        let n = spawn::read_unit_file(self.name(i), &mut text).unwrap_or(0);
        let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
        let missing = parsed.unit.ok().and_then(|u| {
            u.requires.iter().map(|d| unit::service_name(d).unwrap_or(d)).find(|d| self.find(d).is_none()).map(|d| line!("requires ", d, ", which does not exist"))
        });
        missing.unwrap_or_else(|| line!("requires a unit that does not exist"))
    }

    /// Some(Ok) to start now, Some(Err(reason)) to fail, None to keep waiting.
    fn deps_ready(&self, i: usize) -> Option<Result<(), Line>> {
        let s = self.svcs.get(i)?;
        if s.missing_require {
            return Some(Err(self.missing_require_reason(i)));
        }
        for j in s.requires.iter() {
            let Some(d) = self.svcs.get(j) else { continue };
            match d.state {
                State::Failed => return Some(Err(line!("required unit ", d.name.as_str(), " failed"))),
                State::Inactive if !d.goal_up => return Some(Err(line!("required unit ", d.name.as_str(), " is stopped"))),
                State::Running | State::Done | State::Skipped => {}
                _ => return None,
            }
        }
        for j in s.after.iter() {
            let d = self.svcs.get(j)?;
            if !d.state.settled() || (d.state == State::Inactive && d.goal_up) {
                return None;
            }
        }
        Some(Ok(()))
    }

    #[inline(never)]
    fn begin_start(&mut self, i: usize, now: u64) {
        // The unit file is read once per start, here: its conditions are checked as the file
        // is now, and the first command's child uses this parse (it is a fork: it has this
        // memory) instead of reading the file again.
        let mut text = [0u8; unit::UNIT_FILE_BYTES];
        let u = match self.read_unit(i, &mut text).and_then(|u| conditions_hold(&u).map(|()| u)) {
            Ok(u) => u,
            Err(why) => {
                log!(self.log, Level::Info, self.name(i), ": skipped: ", why.as_bytes());
                self.note(i, why);
                self.set_state(i, State::Skipped);
                return;
            }
        };
        let Some(s) = self.svcs.get_mut(i) else { return };
        s.step = 0;
        s.killed = false;
        s.note.clear();
        if s.cfg.n_pre > 0 {
            self.set_state(i, State::StartPre);
            self.spawn(i, Which::StartPre(0), Some(&u), now);
        } else {
            self.start_main(i, 0, Some(&u), now);
        }
    }

    /// `unit`: the unit file as read by this start, if it was (the child reads it otherwise).
    fn start_main(&mut self, i: usize, step: u8, unit: Option<&unit::Unit<'_>>, now: u64) {
        let Some(s) = self.svcs.get_mut(i) else { return };
        s.step = step;
        let kind = s.cfg.kind;
        match kind {
            ServiceType::Simple => self.set_state(i, State::Running),
            ServiceType::Notify => {
                self.set_state(i, State::Starting);
                if let Some(s) = self.svcs.get_mut(i) {
                    s.deadline = Some(now.saturating_add(s.cfg.timeout_start_ms));
                }
            }
            ServiceType::Oneshot => self.set_state(i, State::Starting),
        }
        self.spawn(i, Which::Start(step), unit, now);
    }

    /// Reads and parses unit `i`'s file into `text`.
    fn read_unit<'t>(&self, i: usize, text: &'t mut [u8]) -> Result<unit::Unit<'t>, Line> {
        let n = spawn::read_unit_file(self.name(i), text).map_err(|e| line!("read unit file: ", e))?;
        let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
        parsed.unit.map_err(|d| line!("unit file line ", d.line, ": ", d.message))
    }

    /// Forks a command of unit `i`; a failed fork is a failed start.
    fn spawn(&mut self, i: usize, which: Which, unit: Option<&unit::Unit<'_>>, now: u64) {
        let log = self.log;
        let cgroups = self.cgroups;
        let clone3 = &mut self.clone3;
        let Some(s) = self.svcs.get_mut(i) else { return };
        // The output pipe: read end non-blocking in PID 1, write end for the children.
        if s.cfg.kmsg && s.out_w.is_none() {
            match io::pipe2(true, true) {
                Ok((r, w)) => {
                    flush_output(log, s, &mut self.partials);
                    s.out = Some(r);
                    s.out_w = Some(w);
                }
                Err(e) => log!(log, Level::Warn, s.name.as_str(), ": pipe for its output: ", e, "; it writes to /dev/kmsg directly"),
            }
        }
        let mut req = spawn::Request {
            name: s.name.as_str(),
            which,
            out_pipe: s.out_w.as_ref(),
            cgroups,
            main_pid: if matches!(which, Which::Stop(_)) { s.main } else { None },
            unit,
            in_cgroup: false,
        };
        let ns_flags = match which {
            Which::Start(_) => s.cfg.clone_flags,
            _ => 0,
        };
        let tried = cgroups && *clone3;
        let mut into_cgroup = tried;
        let (forked, in_cgroup) = fork_unit(s.name.as_str(), ns_flags, &mut into_cgroup);
        req.in_cgroup = in_cgroup;
        match forked {
            Ok(Fork::Child) => spawn::child(log, &req),
            Ok(Fork::Parent(pid)) => {
                if tried && !into_cgroup {
                    *clone3 = false;
                    log!(log, Level::Info, "clone3 with CLONE_INTO_CGROUP: not supported by this kernel (before Linux 5.7); each child joins its cgroup itself");
                }
                match which {
                    Which::Start(_) => {
                        s.main = Some(pid);
                        s.out_pid = pid;
                        s.since = now;
                    }
                    Which::StartPre(_) | Which::Stop(_) => {
                        s.ctl = Some(pid);
                        s.out_pid = pid;
                    }
                }
                let what = match which {
                    Which::StartPre(_) => "ExecStartPre",
                    Which::Start(_) => "started",
                    Which::Stop(_) => "ExecStop",
                };
                log!(log, Level::Info, s.name.as_str(), ": ", what, " (pid ", pid, ")");
            }
            Err(e) => {
                log!(log, Level::Error, s.name.as_str(), ": fork: ", e);
                self.note(i, line!("fork: ", e));
                self.after_exit(i, LastExit::Code(255), now);
            }
        }
    }

    fn begin_stop(&mut self, i: usize, now: u64) {
        let log = self.log;
        let Some(s) = self.svcs.get_mut(i) else { return };
        s.deadline = Some(now.saturating_add(s.cfg.timeout_stop_ms));
        s.killed = false;
        let has_stop = s.cfg.n_stop > 0 && s.state == State::Running && s.main.is_some() && !s.remove;
        log!(log, Level::Info, s.name.as_str(), ": stopping");
        self.set_state(i, State::Stopping);
        if has_stop {
            self.spawn(i, Which::Stop(0), None, now);
        } else {
            self.signal_unit(i, None);
        }
    }

    /// Sends the unit's KillSignal (or `sig`) to its main process and its whole group.
    fn signal_unit(&mut self, i: usize, sig: Option<Signal>) {
        let cgroups = self.cgroups;
        let Some(s) = self.svcs.get_mut(i) else { return };
        let sig = sig.unwrap_or(s.cfg.kill_signal);
        if let Some(pid) = s.main {
            let _ = process::kill(pid.raw(), sig);
            let _ = process::kill(pid.raw(), Signal::CONT);
        }
        if let Some(pid) = s.ctl {
            let _ = process::kill(pid.raw(), sig);
        }
        if cgroups {
            cgroup::signal_all(s.name.as_str(), sig);
        }
    }

    /// Stopping: done when no process of it is left. Escalates to SIGKILL at the deadline.
    #[inline(never)]
    fn check_stopped(&mut self, i: usize, now: u64) -> bool {
        let log = self.log;
        let cgroups = self.cgroups;
        let Some(s) = self.svcs.get_mut(i) else { return false };
        let populated = cgroups && cgroup::populated(s.name.as_str());
        s.populated = populated;
        let due = s.deadline.is_some_and(|d| d <= now);
        if s.main.is_none() && s.ctl.is_none() && !populated {
            s.deadline = None;
            if cgroups {
                let _ = cgroup::remove(s.name.as_str());
            }
            log!(log, Level::Info, s.name.as_str(), ": stopped");
            let restart = s.restart_after_stop;
            s.restart_after_stop = false;
            if restart {
                s.goal_up = true;
                self.set_state(i, State::Waiting);
            } else {
                self.set_state(i, State::Inactive);
            }
            return true;
        }
        if due {
            if !s.killed {
                s.killed = true;
                s.deadline = Some(now.saturating_add(KILL_WAIT_MS));
                log!(log, Level::Warn, s.name.as_str(), ": did not stop within ", s.cfg.timeout_stop_ms, " ms; sending SIGKILL");
                self.signal_unit(i, Some(Signal::KILL));
                return true;
            }
            log!(log, Level::Error, s.name.as_str(), ": processes left after SIGKILL; giving up on them");
            s.deadline = None;
            s.main = None;
            s.ctl = None;
            s.restart_after_stop = false;
            self.set_state(i, State::Failed);
            return true;
        }
        false
    }

    fn set_state(&mut self, i: usize, st: State) {
        if let Some(s) = self.svcs.get_mut(i) {
            if s.state != st {
                if matches!(st, State::Running | State::Done) {
                    s.since = now_ms();
                }
                if matches!(st, State::Inactive | State::Failed | State::Done | State::Skipped) {
                    // Output of what is left still arrives; the read end sees EOF after it.
                    s.out_w = None;
                }
                s.state = st;
                self.changed = true;
            }
        }
    }

    fn note(&mut self, i: usize, l: Line) {
        if let Some(s) = self.svcs.get_mut(i) {
            s.set_note(&l);
        }
    }

    fn fail(&mut self, i: usize, why: &Line) {
        log!(self.log, Level::Error, self.name(i), ": failed: ", why.as_bytes());
        if let Some(s) = self.svcs.get_mut(i) {
            s.set_note(why);
            s.deadline = None;
        }
        self.set_state(i, State::Failed);
        self.stop_dependants(i);
    }

    /// Unit `i` failed: what Requires= it and already runs is stopped, with the reason (one
    /// that still waits fails in `deps_ready`).
    fn stop_dependants(&mut self, i: usize) {
        self.stop_requiring(i, "failed");
    }

    /// What Requires= unit `i`, directly or through other units, and is active is stopped,
    /// each with a line naming the unit it needs and `why` (as systemd propagates a stop).
    fn stop_requiring(&mut self, i: usize, why: &str) {
        let log = self.log;
        let mut stopped = Bits::default();
        stopped.set(i);
        // Each pass stops the dependants of the units stopped so far: at most one pass per
        // unit, since every pass that goes on adds one.
        for _ in 0..self.svcs.len() {
            let mut more = false;
            for j in 0..self.svcs.len() {
                let Some(d) = self.svcs.get(j) else { continue };
                if stopped.has(j) || !d.goal_up || !d.active() {
                    continue;
                }
                let Some(req) = d.requires.iter().find(|&r| stopped.has(r)) else { continue };
                let req_name = self.svcs.get(req).map(|r| r.name.clone()).unwrap_or_default();
                if let Some(d) = self.svcs.get_mut(j) {
                    d.goal_up = false;
                    d.restart_after_stop = false;
                    log!(log, Level::Warn, d.name.as_str(), ": stopping: required unit ", req_name.as_str(), " ", if req == i { why } else { "is stopping" });
                }
                stopped.set(j);
                more = true;
                self.changed = true;
            }
            if !more {
                break;
            }
        }
    }

    fn name(&self, i: usize) -> &str {
        self.svcs.get(i).map_or("?", |s| s.name.as_str())
    }

    #[inline(never)]
    fn forget_removed(&mut self) {
        let cgroups = self.cgroups;
        let mut i = 0;
        while i < self.svcs.len() {
            let gone = self.svcs.get(i).is_some_and(|s| s.remove && !s.active() && s.state != State::Stopping && s.out.is_none());
            if gone {
                let Some(mut s) = self.svcs.remove(i) else { break };
                flush_output(self.log, &mut s, &mut self.partials);
                if cgroups {
                    let _ = cgroup::remove(s.name.as_str());
                }
                log!(self.log, Level::Info, s.name.as_str(), ": removed");
                // Indices moved: resolve again.
                self.resolve_deps();
            } else {
                i += 1;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Children

    #[inline(never)]
    fn reap(&mut self) {
        let cpu_before = time::clock_gettime(Clock::ProcessCputime);
        let orphans_before = self.orphans;
        self.reap_all();
        let cost_ns = cpu_ns(time::clock_gettime(Clock::ProcessCputime)).saturating_sub(cpu_ns(cpu_before));
        let orphan_pause = if self.orphans != orphans_before { ORPHAN_PAUSE_MS } else { 0 };
        self.reap_not_before = match reap_pause_ms(cost_ns).max(orphan_pause) {
            0 => 0,
            ms => now_ms().saturating_add(ms),
        };
    }

    fn reap_all(&mut self) {
        loop {
            match process::wait4(-1, WaitFlags::NOHANG) {
                Ok(Some((pid, status))) => {
                    let orphans = self.orphans;
                    self.child_exited(pid, status);
                    if self.orphans != orphans {
                        self.reap_neighbours(pid);
                    }
                }
                Ok(None) | Err(Errno::ECHILD) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log!(self.log, Level::Error, "wait4: ", e);
                    break;
                }
            }
        }
    }

    /// `wait4(-1)` walks PID 1's children in the kernel until it finds a zombie, so reaping k
    /// of n costs up to k walks of n: the 10,000 orphans of the bench do not exit in the list's
    /// order, and each reap walked past thousands still alive. `wait4(pid)` looks its child up
    /// directly (`do_wait_pid` in the kernel; the bench's 6.1 has it), and orphans that exit
    /// together mostly have neighbouring pids: after an orphan is
    /// reaped, the pids next to it are tried, up then down, until [`NEIGHBOUR_MISSES`] in a row
    /// were not exited children (a few syscalls, against a walk of thousands of children).
    /// A unit's process is never followed by these tries: a respawn is not slowed down.
    fn reap_neighbours(&mut self, pid: Pid) {
        for step in [1i32, -1] {
            let mut next = pid.raw();
            let mut misses = 0;
            while misses < NEIGHBOUR_MISSES {
                next = match next.checked_add(step) {
                    Some(n) if n > 1 => n,
                    _ => break,
                };
                match process::wait4(next, WaitFlags::NOHANG) {
                    Ok(Some((p, status))) => {
                        self.child_exited(p, status);
                        misses = 0;
                    }
                    // Alive, not a child of ours, or no such process.
                    _ => misses += 1,
                }
            }
        }
    }

    #[inline(never)]
    fn child_exited(&mut self, pid: Pid, status: WaitStatus) {
        let now = now_ms();
        if Some(pid) == self.shell {
            self.shell_exited(pid, status, now);
            return;
        }
        if Some(pid) == self.upgrade.child {
            self.upgrade.child = None;
            self.upgrade_child_done(status, now);
            return;
        }
        if Some(pid) == self.upgrade.warm {
            self.upgrade.warm = None;
            self.changed = true;
            return;
        }
        let found = self.svcs.iter().position(|s| s.main == Some(pid) || s.ctl == Some(pid));
        let Some(i) = found else {
            self.orphans = self.orphans.wrapping_add(1);
            // A service's last process may have been an orphan: check Stopping units.
            self.changed = true;
            return;
        };
        let exit = LastExit::from(status);
        let is_main = self.svcs.get(i).is_some_and(|s| s.main == Some(pid));
        if let Some(s) = self.svcs.get_mut(i) {
            if is_main {
                s.main = None;
            } else {
                s.ctl = None;
            }
        }
        self.changed = true;
        let Some(s) = self.svcs.get(i) else { return };
        let state = s.state;
        let step = s.step;
        let cfg = s.cfg;
        if !is_main {
            let ok = exit.clean() && exit != LastExit::Signal(Signal::TERM) || exit == LastExit::Code(0);
            match state {
                State::StartPre => {
                    let ignore = cfg.pre_ignore & (1u8.checked_shl(u32::from(step)).unwrap_or(0)) != 0;
                    if ok || ignore {
                        if step + 1 < cfg.n_pre {
                            if let Some(s) = self.svcs.get_mut(i) {
                                s.step = step + 1;
                            }
                            self.spawn(i, Which::StartPre(step + 1), None, now);
                        } else {
                            self.start_main(i, 0, None, now);
                        }
                    } else {
                        self.report_exit(i, pid, exit, "ExecStartPre");
                        self.after_exit(i, exit, now);
                    }
                }
                State::Stopping => {
                    if step + 1 < cfg.n_stop {
                        if let Some(s) = self.svcs.get_mut(i) {
                            s.step = step + 1;
                        }
                        self.spawn(i, Which::Stop(step + 1), None, now);
                    } else {
                        // ExecStop done: whatever is left gets the kill signal.
                        self.signal_unit(i, None);
                    }
                }
                _ => {}
            }
            return;
        }
        if let Some(s) = self.svcs.get_mut(i) {
            s.last_exit = exit;
        }
        match state {
            State::Stopping => {
                self.report_exit(i, pid, exit, "main process");
                // The rest of the group follows the main process.
                if self.svcs.get(i).is_some_and(|s| s.ctl.is_none()) {
                    self.signal_unit(i, None);
                }
            }
            State::Starting if cfg.kind == ServiceType::Oneshot => {
                let ignore = cfg.start_ignore & (1u8.checked_shl(u32::from(step)).unwrap_or(0)) != 0;
                if exit == LastExit::Code(0) || ignore {
                    if step + 1 < cfg.n_start {
                        self.start_main(i, step + 1, None, now);
                    } else {
                        log!(self.log, Level::Info, self.name(i), ": finished");
                        self.set_state(i, State::Done);
                        self.settle_group(i);
                    }
                } else {
                    self.report_exit(i, pid, exit, "command");
                    self.after_exit(i, exit, now);
                }
            }
            _ => {
                self.report_exit(i, pid, exit, "main process");
                self.after_exit(i, exit, now);
            }
        }
    }

    /// What is left of a finished oneshot's group is stopped.
    fn settle_group(&mut self, i: usize) {
        if self.cgroups && self.svcs.get(i).is_some_and(|s| cgroup::populated(s.name.as_str())) {
            self.signal_unit(i, None);
        }
    }

    fn report_exit(&mut self, i: usize, pid: Pid, exit: LastExit, what: &str) {
        let name = self.name(i);
        let l = match exit {
            LastExit::Code(c) => match spawn::exit::name(c) {
                Some(step) => line!(what, " (pid ", pid, ") exited with status ", u32::from(c), " (", step, " setup failed)"),
                None => line!(what, " (pid ", pid, ") exited with status ", u32::from(c)),
            },
            LastExit::Signal(s) => line!(what, " (pid ", pid, ") was killed by ", s),
            LastExit::None => line!(what, " (pid ", pid, ") ended"),
        };
        let level = if exit.clean() { Level::Info } else { Level::Warn };
        log!(self.log, level, name, ": ", l.as_bytes());
        self.note(i, l);
    }

    /// The main process (or a start command) ended on its own: restart, or fail, or stop.
    fn after_exit(&mut self, i: usize, exit: LastExit, now: u64) {
        let shutting_down = self.shutdown.is_some();
        let log = self.log;
        let Some(s) = self.svcs.get_mut(i) else { return };
        let restart = !shutting_down
            && s.goal_up
            && s.cfg.restart.applies(exit.as_unit_exit());
        let ran = now.saturating_sub(s.since);
        // Kill what is left of the group before anything else.
        if restart {
            match s.backoff.on_exit(now, s.cfg.restart_sec_ms, ran) {
                Decision::RestartIn(ms) => {
                    log!(log, Level::Info, s.name.as_str(), ": restarting in ", ms, " ms");
                    s.deadline = Some(now.saturating_add(ms));
                    s.killed = false;
                    self.set_state(i, State::Backoff);
                    self.kill_rest(i);
                }
                Decision::GiveUp => {
                    let l = line!("restarted too often (", crate::restart::BURST_FAILURES as u32, " times in ", crate::restart::BURST_WINDOW_MS / 1000, " s)");
                    self.fail(i, &l);
                    self.kill_rest(i);
                }
            }
        } else if exit.clean() {
            s.goal_up = false;
            s.deadline = None;
            self.set_state(i, State::Inactive);
            self.kill_rest(i);
        } else {
            let note = s.note.clone();
            s.deadline = None;
            self.set_state(i, State::Failed);
            log!(log, Level::Error, self.name(i), ": failed: ", note.as_str());
            self.kill_rest(i);
            self.stop_dependants(i);
        }
    }

    fn kill_rest(&mut self, i: usize) {
        if self.cgroups && self.svcs.get(i).is_some_and(|s| cgroup::populated(s.name.as_str())) {
            self.signal_unit(i, Some(Signal::KILL));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Input

    fn on_signal(&mut self, sig: Signal) {
        if let Some(action) = Action::for_signal(sig) {
            let why = line!(sig);
            self.begin_shutdown(action, core::str::from_utf8(why.as_bytes()).unwrap_or("signal"));
        } else if sig == Signal::HUP {
            log!(self.log, Level::Info, "SIGHUP: reloading units");
            self.reload();
        }
        // SIGCHLD: reap() runs after every wake-up.
    }

    /// The unit files of the image now in use: new units start, removed ones stop, changed
    /// ones take their new definition (the upgrade restarts them). Logged only if any changed.
    fn rescan_units(&mut self, what: &str) {
        let (a, c, r) = self.scan(Scan::Images);
        if a + c + r > 0 {
            log!(self.log, Level::Info, what, ": unit files: ", a, " added, ", c, " changed, ", r, " removed");
        }
    }

    fn reload(&mut self) -> (usize, usize, usize) {
        let (a, c, r) = self.scan(Scan::Reload);
        log!(self.log, Level::Info, "reload: ", a, " added, ", c, " changed, ", r, " removed");
        (a, c, r)
    }

    #[inline(never)]
    fn read_notify(&mut self) {
        let mut buf = [0u8; notify_msg::NOTIFY_BYTES];
        // Bounded: a flood of datagrams cannot keep PID 1 here.
        for _ in 0..64 {
            let Some(fd) = &self.notify else { return };
            let (n, cred) = match net::recvmsg_cred(fd, &mut buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            let Some(cred) = cred else { continue };
            let msg = notify_msg::parse(buf.get(..n).unwrap_or(&[]));
            let sender = Pid(cred.pid);
            let mut gbuf = [0u8; 64];
            let i = self.svcs.iter().position(|s| s.main == Some(sender)).or_else(|| {
                let g = cgroup::service_of(sender, &mut gbuf)?;
                self.find(g)
            });
            let Some(i) = i else { continue };
            self.on_notify(i, &msg);
        }
    }

    fn on_notify(&mut self, i: usize, msg: &notify_msg::Notify<'_>) {
        let log = self.log;
        if let Some(st) = msg.status {
            if let Some(s) = self.svcs.get_mut(i) {
                s.note.clear();
                for ch in st.chars().take(s.note.capacity()) {
                    let _ = s.note.push(if ch.is_control() { '?' } else { ch });
                }
            }
        }
        if let Some(pid) = msg.mainpid {
            let in_group = {
                let mut g = [0u8; 64];
                cgroup::service_of(Pid(pid), &mut g) == Some(self.name(i)) || !self.cgroups
            };
            if in_group {
                if let Some(s) = self.svcs.get_mut(i) {
                    s.main = Some(Pid(pid));
                }
                log!(log, Level::Info, self.name(i), ": main process is now pid ", pid);
            }
        }
        if msg.ready && self.svcs.get(i).is_some_and(|s| s.state == State::Starting && s.cfg.kind == ServiceType::Notify) {
            if let Some(s) = self.svcs.get_mut(i) {
                s.deadline = None;
            }
            log!(log, Level::Info, self.name(i), ": ready");
            self.set_state(i, State::Running);
        }
        if msg.stopping {
            log!(log, Level::Info, self.name(i), ": stopping (STOPPING=1)");
        }
    }

    #[inline(never)]
    fn read_output(&mut self, i: usize) {
        let log = self.log;
        let Some(s) = self.svcs.get_mut(i) else { return };
        let Some(fd) = &s.out else { return };
        let mut buf = [0u8; 1024];
        // Bounded per wake-up, so a flood cannot starve the others.
        for _ in 0..8 {
            match fs::read(fd, &mut buf) {
                Ok(0) => {
                    flush_output(log, s, &mut self.partials);
                    s.out = None;
                    return;
                }
                Ok(n) => {
                    let now = now_ms();
                    let name = s.name.clone();
                    let pid = s.out_pid;
                    let rate = &mut s.rate;
                    s.partial = self.partials.push(s.partial, buf.get(..n).unwrap_or(&[]), |text, _cut| emit_line(log, rate, now, &name, pid, text));
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => return,
                Err(_) => {
                    // Its shared line buffer goes back to the others now.
                    flush_output(log, s, &mut self.partials);
                    s.out = None;
                    return;
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Control clients

    #[inline(never)]
    fn accept_clients(&mut self) {
        let Some(l) = &self.control else { return };
        while self.clients.len() < MAX_CLIENTS {
            let fd = match net::accept4(l, true) {
                Ok(fd) => fd,
                Err(_) => return,
            };
            // Root only: anyone else is answered at once and takes no client slot.
            if !net::peer_cred(&fd).is_ok_and(|c| c.uid == 0) {
                log!(self.log, Level::Warn, "control: connection from a non-root user refused");
                let _ = net::sendmsg(&fd, b"error: permission denied: root only\n", net::MSG_DONTWAIT | net::MSG_NOSIGNAL);
                continue;
            }
            let c = Client { fd, req: proto::RequestBuf::new(), deadline: now_ms().saturating_add(CLIENT_TIMEOUT_MS), pending: None };
            let _ = self.clients.push(c);
        }
    }

    #[inline(never)]
    fn read_client(&mut self, k: usize) {
        let Some(c) = self.clients.get_mut(k) else { return };
        let mut buf = [0u8; 256];
        let n = match fs::read(&c.fd, &mut buf) {
            Ok(0) => {
                self.clients.swap_remove(k);
                return;
            }
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return,
            Err(_) => {
                self.clients.swap_remove(k);
                return;
            }
        };
        let fed = c.req.feed(buf.get(..n).unwrap_or(&[]));
        match fed {
            proto::Feed::NeedMore => {}
            proto::Feed::TooLong => {
                self.respond(k, Err("request too long"), &[]);
            }
            proto::Feed::Complete(len) => {
                let mut copy = [0u8; proto::REQUEST_BYTES];
                let bytes = c.req.bytes().get(..len).unwrap_or(&[]);
                let l = bytes.len().min(copy.len());
                if let (Some(d), Some(s)) = (copy.get_mut(..l), bytes.get(..l)) {
                    d.copy_from_slice(s);
                }
                self.handle_request(k, copy.get(..l).unwrap_or(&[]));
            }
        }
    }

    #[inline(never)]
    fn handle_request(&mut self, k: usize, bytes: &[u8]) {
        let req = match proto::parse_request(bytes) {
            Ok(r) => r,
            Err(e) => {
                log!(self.log, Level::Warn, "control: bad request: ", e.message());
                self.respond(k, Err(e.message()), &[]);
                return;
            }
        };
        match req {
            Request::Status(name) => {
                // In a mapping of its own for this one answer, not on the loop's stack: only
                // the pages the table fills are touched, and they are gone again after it.
                let mut out = match AnonMap::new(RESPONSE_BYTES) {
                    Ok(m) => m,
                    Err(e) => {
                        log!(self.log, Level::Error, "control: mmap of ", RESPONSE_BYTES, " bytes for the status table: ", e);
                        return self.respond(k, Err("out of memory"), &[]);
                    }
                };
                let n = self.status_text(name, out.as_mut_slice());
                match n {
                    Ok(n) => self.respond(k, Ok(()), out.as_slice().get(..n).unwrap_or(&[])),
                    Err(e) => self.respond(k, Err(e), &[]),
                }
            }
            Request::Start(name) | Request::Restart(name) => {
                let restart = matches!(req, Request::Restart(_));
                let Some(i) = self.find(name) else { return self.respond(k, Err("no such unit"), &[]) };
                if let Some(s) = self.svcs.get_mut(i) {
                    s.backoff.reset();
                    s.goal_up = true;
                    if restart && s.active() {
                        s.restart_after_stop = true;
                        s.goal_up = false;
                    } else if matches!(s.state, State::Inactive | State::Failed | State::Skipped | State::Backoff) {
                        s.deadline = None;
                        s.state = State::Waiting;
                    }
                }
                log!(self.log, Level::Info, "control: ", if restart { "restart " } else { "start " }, self.name(i));
                self.changed = true;
                self.wait_for(k, i, Want::Started);
            }
            Request::Stop(name) => {
                let Some(i) = self.find(name) else { return self.respond(k, Err("no such unit"), &[]) };
                if let Some(s) = self.svcs.get_mut(i) {
                    s.goal_up = false;
                    s.restart_after_stop = false;
                }
                log!(self.log, Level::Info, "control: stop ", self.name(i));
                self.stop_requiring(i, "is stopped");
                self.changed = true;
                self.wait_for(k, i, Want::Stopped);
            }
            Request::Upgrade { path, persist, settle_secs } => {
                let settle = settle_secs.map_or(DEFAULT_SETTLE_MS, |s| u64::from(s).saturating_mul(1000));
                match self.begin_upgrade(path, persist, settle) {
                    Ok(()) => {
                        if let Some(c) = self.clients.get_mut(k) {
                            c.pending = Some((String::new(), Want::Upgrade));
                            c.deadline = now_ms().saturating_add(UPGRADE_TIMEOUT_MS);
                        }
                    }
                    Err(why) => self.respond(k, Err(why.as_str()), &[]),
                }
            }
            Request::Rollback => match self.upgrade.phase {
                UpPhase::Restarting | UpPhase::Settling => {
                    self.rollback(line!("rollback requested"));
                    self.respond(k, Ok(()), b"rolling back\n");
                }
                UpPhase::Idle => self.respond(k, Err("no upgrade in progress"), &[]),
                _ => self.respond(k, Err("the upgrade is not in its restart or settle phase"), &[]),
            },
            Request::Reload => {
                let (a, c, r) = self.reload();
                let l = line!(a, " added, ", c, " changed, ", r, " removed\n");
                self.respond(k, Ok(()), l.as_bytes());
            }
            Request::Poweroff | Request::Reboot | Request::Halt => {
                let action = match req {
                    Request::Poweroff => Action::PowerOff,
                    Request::Reboot => Action::Reboot,
                    _ => Action::Halt,
                };
                self.respond(k, Ok(()), &[]);
                self.begin_shutdown(action, "control request");
            }
            _ => self.respond(k, Err("not supported yet"), &[]),
        }
    }

    fn wait_for(&mut self, k: usize, i: usize, want: Want) {
        let name = self.svcs.get(i).map(|s| s.name.clone()).unwrap_or_default();
        if let Some(c) = self.clients.get_mut(k) {
            c.pending = Some((name, want));
            c.deadline = now_ms().saturating_add(PENDING_TIMEOUT_MS);
        }
    }

    /// Answers clients whose start/stop has settled, and drops clients past their deadline.
    #[inline(never)]
    fn expire_clients(&mut self, now: u64) {
        let mut k = 0;
        while k < self.clients.len() {
            let Some(c) = self.clients.get(k) else { break };
            let mut answer: Option<Result<(), &'static str>> = None;
            let mut body = Line::new();
            if let Some((_, Want::Upgrade)) = &c.pending {
                if let Some((ok, msg)) = self.upgrade.done.take() {
                    body = line!(msg.as_str(), "\n");
                    answer = Some(if ok { Ok(()) } else { Err("upgrade failed") });
                }
            } else if let Some((name, want)) = &c.pending {
                match self.find(name).and_then(|i| self.svcs.get(i)) {
                    None => answer = Some(Err("the unit was removed")),
                    Some(s) => match (want, s.state) {
                        (Want::Started, State::Running | State::Done) => answer = Some(Ok(())),
                        (Want::Started, State::Failed | State::Skipped | State::Backoff | State::Inactive) if !s.goal_up || s.state != State::Inactive => {
                            body = line!(s.name.as_str(), ": ", s.state.name(), ": ", s.note.as_str(), "\n");
                            answer = Some(Err("the unit did not start"));
                        }
                        (Want::Stopped, State::Inactive | State::Failed | State::Skipped) if !s.active() => answer = Some(Ok(())),
                        _ => {}
                    },
                }
            }
            if answer.is_none() && c.deadline <= now {
                answer = Some(Err(if c.pending.is_some() { "timed out waiting for the unit" } else { "no request received in time" }));
            }
            match answer {
                Some(a) => {
                    let b = body;
                    self.respond(k, a, b.as_bytes());
                }
                None => k += 1,
            }
        }
    }

    /// Writes the response and closes the connection.
    fn respond(&mut self, k: usize, status: Result<(), &str>, body: &[u8]) {
        if k >= self.clients.len() {
            return;
        }
        let c = self.clients.swap_remove(k);
        let mut head = Line::new();
        match status {
            Ok(()) => head.push(b"ok\n"),
            Err(e) => {
                head.push(b"error: ");
                head.push(e.as_bytes());
                head.push(b"\n");
            }
        }
        // A client that does not read gets what the socket buffer holds (the table fits).
        let _ = net::sendmsg(&c.fd, head.as_bytes(), net::MSG_DONTWAIT | net::MSG_NOSIGNAL);
        if !body.is_empty() {
            let _ = net::sendmsg(&c.fd, body, net::MSG_DONTWAIT | net::MSG_NOSIGNAL);
        }
    }

    fn status_text(&self, name: Option<&str>, out: &mut [u8]) -> Result<usize, &'static str> {
        let mut w = crate::text::SliceWriter::new(out);
        proto::write_status_header(&mut w).map_err(|_| "response too long")?;
        let now = now_ms();
        fn row(s: &Service, now: u64) -> proto::StatusRow<'_> {
            proto::StatusRow {
            name: s.name.as_str(),
            state: s.state.name(),
            pid: s.main.map(|p| p.raw()),
            restarts: s.restarts,
            uptime_ms: matches!(s.state, State::Running | State::Done).then(|| now.saturating_sub(s.since)),
            last_exit: match s.last_exit {
                LastExit::None => proto::LastExit::None,
                LastExit::Code(c) => proto::LastExit::Code(c),
                LastExit::Signal(sig) => proto::LastExit::Signal(sig.0),
            },
            }
        }
        match name {
            Some(n) => {
                let i = self.find(n).ok_or("no such unit")?;
                let s = self.svcs.get(i).ok_or("no such unit")?;
                proto::write_status_row(&row(s, now), &mut w).map_err(|_| "response too long")?;
                if !s.note.is_empty() {
                    w.write(b"  ").and_then(|_| w.write(s.note.as_bytes())).and_then(|_| w.write(b"\n")).map_err(|_| "response too long")?;
                }
            }
            None => {
                for s in self.svcs.iter() {
                    proto::write_status_row(&row(s, now), &mut w).map_err(|_| "response too long")?;
                }
                let mut l = Line::new();
                "image ".put(&mut l);
                crate::upgrade::describe_image(&mut l);
                w.write(l.as_bytes()).and_then(|_| w.write(b"\n")).map_err(|_| "response too long")?;
                if self.upgrade.phase != UpPhase::Idle {
                    let u = &self.upgrade;
                    let unit = u.order.get(u.pos).and_then(|&i| self.svcs.get(usize::from(i))).map_or("", |s| s.name.as_str());
                    let l = line!("upgrade to ", u.path.as_str(), ": ", u.phase.name(), " ", unit, " (", u.pos.min(u.order.len()), "/", u.order.len(), ")");
                    w.write(l.as_bytes()).and_then(|_| w.write(b"\n")).map_err(|_| "response too long")?;
                }
                if let Some(wd) = &self.watchdog {
                    let mut l = Line::new();
                    wd.describe(&mut l);
                    w.write(l.as_bytes()).and_then(|_| w.write(b"\n")).map_err(|_| "response too long")?;
                }
            }
        }
        Ok(w.len())
    }

    // -----------------------------------------------------------------------------------------
    // On-the-fly upgrade (docs/upgrade.md): swap, resync, rolling restart, commit or rollback

    #[inline(never)]
    fn begin_upgrade(&mut self, path: &str, persist: bool, settle_ms: u64) -> Result<(), String<96>> {
        let refuse = |why: &[u8]| -> Result<(), String<96>> { Err(short(why)) };
        if self.upgrade.phase != UpPhase::Idle {
            let l = line!("an upgrade is already in progress (", self.upgrade.phase.name(), " ", self.upgrade.path.as_str(), ")");
            return refuse(l.as_bytes());
        }
        if self.shutdown.is_some() {
            return refuse(b"the system is shutting down");
        }
        if path.len() > self.upgrade.path.capacity() {
            return refuse(b"path too long");
        }
        if persist && self.boot_image.is_none() {
            return refuse(b"--persist: no boot device (autoinit.boot=) to persist the image to; nothing done");
        }
        if crate::upgrade::upgrade_dir_mounted() {
            return refuse(b"/rofs_root/_upgrade is a mount point (an old image is still attached): nothing done");
        }
        let now = now_ms();
        let (pid, reason) = match crate::upgrade::spawn_swap(self.log, path) {
            Ok(r) => r,
            Err(e) => {
                let l = line!("fork: ", e);
                return refuse(l.as_bytes());
            }
        };
        log!(self.log, Level::Info, "upgrade: checking ", path, if persist { " (persist)" } else { "" });
        let u = &mut self.upgrade;
        u.phase = UpPhase::Swapping;
        u.path = short(path.as_bytes());
        u.persist = persist;
        u.settle_ms = settle_ms;
        u.child = Some(pid);
        u.reason = reason;
        u.order.clear();
        u.pos = 0;
        u.requested_at = now;
        u.failure.clear();
        u.done = None;
        u.warm_pos = usize::MAX;
        u.stop_pending = false;
        Ok(())
    }

    fn finish_upgrade(&mut self, ok: bool, msg: &Line) {
        let level = if ok { Level::Info } else { Level::Error };
        log!(self.log, level, "upgrade: ", msg.as_bytes());
        self.stop_warming();
        self.upgrade.phase = UpPhase::Idle;
        self.upgrade.done = Some((ok, short(msg.as_bytes())));
        self.changed = true;
    }

    #[inline(never)]
    fn upgrade_child_done(&mut self, status: WaitStatus, now: u64) {
        let code = status.exit_code();
        match self.upgrade.phase {
            UpPhase::Swapping => {
                let reason_fd = self.upgrade.reason.take();
                if code != Some(crate::upgrade::exit::SWAPPED) {
                    // The child logged why and wrote its first error to the pipe; make sure
                    // nothing stays mounted.
                    if crate::upgrade::upgrade_dir_mounted() {
                        let _ = crate::upgrade::detach_old(self.log);
                    }
                    let mut buf = [0u8; 256];
                    let reason = reason_fd.as_ref().map_or(&[][..], |fd| crate::upgrade::read_reason(fd, &mut buf));
                    let reason: &[u8] = if reason.is_empty() { b"see the console" } else { reason };
                    let what = if code == Some(crate::upgrade::exit::REFUSED) { "image refused: " } else { "swap failed: " };
                    self.finish_upgrade(false, &line!(what, reason, "; nothing changed"));
                    return;
                }
                let r = crate::upgrade::resync_root(self.log);
                let took = now.saturating_sub(self.upgrade.requested_at);
                log!(self.log, Level::Info, "upgrade: swapped to ", self.upgrade.path.as_str(), " ", took, " ms after the request (root: +", r.added, " -", r.removed, " links, /etc: +", r.etc_added, " -", r.etc_removed, ")");
                self.rescan_units("upgrade");
                self.plan_restarts();
                self.upgrade.phase = UpPhase::Restarting;
                self.upgrade.pos = 0;
                self.restart_next(now);
            }
            UpPhase::Persisting => {
                let committed = self.committed.clone();
                if code == Some(0) {
                    let l = line!(committed.as_str(), "; persisted: the next boot uses it (trial boots: ", u32::from(persist::TRIAL_TRIES), ")");
                    self.finish_upgrade(true, &l);
                } else {
                    let l = line!(committed.as_str(), "; but persisting it on the boot device failed (see above): the next boot uses the previous image");
                    self.finish_upgrade(false, &l);
                }
            }
            UpPhase::RollingBack => {
                if code != Some(crate::upgrade::exit::SWAPPED) {
                    let l = line!("rollback: swapping back failed (see above); the new image stays in use. Rolled back because ", self.upgrade.failure.as_str());
                    self.finish_upgrade(false, &l);
                    return;
                }
                let r = crate::upgrade::resync_root(self.log);
                let _ = crate::upgrade::detach_old(self.log);
                log!(self.log, Level::Info, "upgrade: swapped back to the previous image (root: +", r.added, " -", r.removed, " links)");
                self.rescan_units("rollback");
                // The units already restarted on the new image run the old one again (not
                // order[pos] if it was still waiting for its warm child: never stopped).
                let done = if self.upgrade.stop_pending { self.upgrade.pos } else { self.upgrade.pos.saturating_add(1) };
                self.upgrade.stop_pending = false;
                let upto = done.min(self.upgrade.order.len());
                for k in 0..upto {
                    let Some(&i) = self.upgrade.order.get(k) else { continue };
                    if let Some(s) = self.svcs.get_mut(usize::from(i)) {
                        s.backoff.reset();
                        if s.active() {
                            s.restart_after_stop = true;
                            s.goal_up = false;
                        } else {
                            s.goal_up = true;
                            s.state = State::Waiting;
                        }
                    }
                }
                let l = line!("rolled back to the previous image: ", self.upgrade.failure.as_str());
                self.finish_upgrade(false, &l);
            }
            _ => {}
        }
    }

    /// The units running now, in dependency order: they are restarted one at a time.
    fn plan_restarts(&mut self) {
        let mut placed = Bits::default();
        self.upgrade.order.clear();
        for _ in 0..self.svcs.len() {
            let mut progress = false;
            for (i, s) in self.svcs.iter().enumerate() {
                // A unit the new image no longer has is stopping, not restarted.
                if placed.has(i) || s.state != State::Running || s.remove {
                    continue;
                }
                let ready = s.after.iter().all(|j| placed.has(j) || self.svcs.get(j).is_none_or(|d| d.state != State::Running));
                if ready {
                    placed.set(i);
                    let _ = self.upgrade.order.push(i as u8);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Restarts `order[pos]` once its files are warm, or commits when every unit has been
    /// restarted.
    fn restart_next(&mut self, now: u64) {
        let Some(&i) = self.upgrade.order.get(self.upgrade.pos) else {
            self.commit_upgrade(now);
            return;
        };
        if self.upgrade.warm_pos != self.upgrade.pos {
            self.warm(self.upgrade.pos);
        }
        self.upgrade.phase = UpPhase::Restarting;
        if self.upgrade.warm.is_some() {
            // Stopped in upgrade_step once the warm child is done (or WARM_MS passed).
            self.upgrade.stop_pending = true;
            self.upgrade.step_deadline = now.saturating_add(WARM_MS);
            return;
        }
        self.stop_for_upgrade(usize::from(i), now);
    }

    /// Forks the child that warms `order[pos]`'s files, if there is such a unit.
    fn warm(&mut self, pos: usize) {
        self.stop_warming();
        self.upgrade.warm_pos = pos;
        let Some(s) = self.upgrade.order.get(pos).and_then(|&i| self.svcs.get(usize::from(i))) else { return };
        match crate::warm::spawn(self.log, s.name.as_str()) {
            Ok(pid) => self.upgrade.warm = Some(pid),
            // Not fatal: the unit starts from a cold cache.
            Err(e) => log!(self.log, Level::Warn, "upgrade: warming ", s.name.as_str(), ": fork: ", e),
        }
    }

    /// Kills a warm child still reading (it is reaped as an orphan would be).
    fn stop_warming(&mut self) {
        if let Some(pid) = self.upgrade.warm.take() {
            let _ = process::kill(pid.raw(), Signal::KILL);
        }
    }

    fn stop_for_upgrade(&mut self, i: usize, now: u64) {
        self.upgrade.stop_pending = false;
        if let Some(s) = self.svcs.get_mut(i) {
            log!(self.log, Level::Info, "upgrade: restarting ", s.name.as_str(), " (", self.upgrade.pos + 1, "/", self.upgrade.order.len(), ")");
            s.backoff.reset();
            s.restart_after_stop = true;
            s.goal_up = false;
        }
        self.upgrade.down_since = now;
        self.upgrade.step_deadline = now.saturating_add(UPGRADE_STEP_MS);
        self.changed = true;
    }

    /// Watches the unit being restarted; returns whether the upgrade moved on.
    #[inline(never)]
    fn upgrade_step(&mut self, now: u64) -> bool {
        let phase = self.upgrade.phase;
        if !matches!(phase, UpPhase::Restarting | UpPhase::Settling) {
            return false;
        }
        let Some(&i) = self.upgrade.order.get(self.upgrade.pos) else { return false };
        let Some(s) = self.svcs.get(usize::from(i)) else {
            self.rollback(line!("a unit was removed during the upgrade"));
            return true;
        };
        let failed = matches!(s.state, State::Failed | State::Backoff | State::Skipped) || (s.state == State::Inactive && !s.goal_up && !s.restart_after_stop);
        match phase {
            UpPhase::Restarting if self.upgrade.stop_pending => {
                if self.upgrade.warm.is_none() || now >= self.upgrade.step_deadline {
                    self.stop_warming();
                    self.stop_for_upgrade(usize::from(i), now);
                    return true;
                }
                false
            }
            UpPhase::Restarting => {
                if s.state == State::Running && s.main.is_some() && !s.restart_after_stop {
                    let down = now.saturating_sub(self.upgrade.down_since);
                    log!(self.log, Level::Info, "upgrade: ", s.name.as_str(), " is back after ", down, " ms (pid ", s.main.map_or(0, |p| p.raw()), ")");
                    let (main, restarts) = (s.main, s.restarts);
                    let u = &mut self.upgrade;
                    u.settle_main = main;
                    u.settle_restarts = restarts;
                    u.settle_until = now.saturating_add(u.settle_ms);
                    u.phase = UpPhase::Settling;
                    // The next unit's files are read while this one settles.
                    let next = u.pos.saturating_add(1);
                    if self.upgrade.order.get(next).is_some() {
                        self.warm(next);
                    }
                    return true;
                }
                if failed {
                    let l = line!(s.name.as_str(), " did not come back on the new image: ", s.state.name(), ": ", s.note.as_str());
                    self.rollback(l);
                    return true;
                }
                if now >= self.upgrade.step_deadline {
                    let l = line!(s.name.as_str(), " did not come back within ", UPGRADE_STEP_MS / 1000, " s");
                    self.rollback(l);
                    return true;
                }
                false
            }
            _ => {
                if s.state != State::Running || s.main != self.upgrade.settle_main || s.restarts != self.upgrade.settle_restarts {
                    let l = line!(s.name.as_str(), " failed within its settle time on the new image: ", s.state.name(), ": ", s.note.as_str());
                    self.rollback(l);
                    return true;
                }
                if now >= self.upgrade.settle_until {
                    self.upgrade.pos += 1;
                    self.restart_next(now);
                    return true;
                }
                false
            }
        }
    }

    fn rollback(&mut self, why: Line) {
        log!(self.log, Level::Error, "upgrade: ", why.as_bytes(), "; rolling back");
        self.stop_warming();
        self.upgrade.failure = short(why.as_bytes());
        match crate::upgrade::spawn_swap_back(self.log) {
            Ok(pid) => {
                self.upgrade.child = Some(pid);
                self.upgrade.phase = UpPhase::RollingBack;
            }
            Err(e) => {
                let l = line!("rollback: fork: ", e, "; the new image stays in use");
                self.finish_upgrade(false, &l);
            }
        }
    }

    #[inline(never)]
    fn commit_upgrade(&mut self, now: u64) {
        let _ = crate::upgrade::detach_old(self.log);
        let took = now.saturating_sub(self.upgrade.requested_at);
        let n = self.upgrade.order.len();
        let l = line!("committed: running ", self.upgrade.path.as_str(), ", ", n, " services restarted, ", took, " ms after the request");
        if !self.upgrade.persist {
            self.finish_upgrade(true, &l);
            return;
        }
        log!(self.log, Level::Info, "upgrade: ", l.as_bytes(), "; persisting");
        self.committed = short(l.as_bytes());
        let path = Path::of(&[self.upgrade.path.as_bytes()]);
        let spawned = match (&self.boot_image, path) {
            (Some(bi), Some(p)) => persist::spawn_persist(self.log, bi, p.c()),
            _ => Err(Errno::ENOENT),
        };
        match spawned {
            Ok(pid) => {
                self.upgrade.child = Some(pid);
                self.upgrade.phase = UpPhase::Persisting;
            }
            Err(e) => {
                let l = line!(l.as_bytes(), "; but persisting failed: fork: ", e);
                self.finish_upgrade(false, &l);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rescue shell (no units, or autoinit.rescue)

    #[inline(never)]
    fn rescue_shell(&mut self, now: u64) {
        if !self.rescue || self.shutdown.is_some() {
            return;
        }
        let Some(at) = self.shell_respawn_at else { return };
        if now < at {
            return;
        }
        self.shell_respawn_at = None;
        let mut tty_buf = [0u8; 64];
        let tty = rescue::console_tty(&mut tty_buf);
        match rescue::spawn(self.log, tty, &self.shell_env) {
            Ok(pid) => {
                self.shell = Some(pid);
                self.shell_started = now;
                crate::fail::set_rescue_shell(Some(pid));
            }
            Err(e) => {
                log!(self.log, Level::Error, "fork for the rescue shell: ", e, "; retrying in 2 s");
                self.shell_respawn_at = Some(now.saturating_add(RESCUE_RESPAWN_MS));
            }
        }
    }

    fn shell_exited(&mut self, pid: Pid, status: WaitStatus, now: u64) {
        self.shell = None;
        crate::fail::set_rescue_shell(None);
        let quick = now.saturating_sub(self.shell_started) < RESCUE_RESPAWN_MS;
        let when = if quick { "; restarting in 2 s" } else { "; restarting" };
        match (status.exit_code(), status.signal()) {
            (Some(code), _) => log!(self.log, Level::Info, "rescue shell (pid ", pid, ") exited with status ", u32::from(code), when),
            (None, Some(sig)) => log!(self.log, Level::Info, "rescue shell (pid ", pid, ") was killed by ", sig, when),
            (None, None) => log!(self.log, Level::Info, "rescue shell (pid ", pid, ") ended", when),
        }
        self.shell_respawn_at = Some(if quick { now.saturating_add(RESCUE_RESPAWN_MS) } else { now });
    }

    // -----------------------------------------------------------------------------------------
    // Shutdown

    fn begin_shutdown(&mut self, action: Action, why: &str) {
        if self.shutdown.is_some() {
            return;
        }
        log!(self.log, Level::Info, why, ": ", action.verb(), "; stopping services");
        if self.upgrade.phase != UpPhase::Idle {
            log!(self.log, Level::Warn, "upgrade: abandoned by the shutdown");
            self.upgrade.phase = UpPhase::Idle;
            self.upgrade.done = Some((false, short(b"abandoned: the system is shutting down")));
        }
        let now = now_ms();
        self.shutdown = Some((action, now.saturating_add(SHUTDOWN_STOP_MS)));
        if action != Action::Reboot {
            if let Some(w) = self.watchdog.take() {
                w.disarm(self.log);
            }
        }
        for s in self.svcs.iter_mut() {
            s.goal_up = false;
            s.restart_after_stop = false;
        }
        self.changed = true;
    }

    fn shutdown_ready(&self) -> bool {
        let Some((_, deadline)) = self.shutdown else { return false };
        let busy = self.svcs.iter().any(|s| s.active() || s.state == State::Stopping);
        !busy || now_ms() >= deadline
    }

    fn finish_shutdown(&mut self, sigfd: Option<&OwnedFd>) -> ! {
        let (action, _) = self.shutdown.unwrap_or((Action::PowerOff, 0));
        if self.svcs.iter().any(|s| s.active()) {
            log!(self.log, Level::Warn, "services did not all stop within ", SHUTDOWN_STOP_MS / 1000, " s; killing the rest");
        } else if !self.svcs.is_empty() {
            log!(self.log, Level::Info, "all services stopped");
        }
        let mut wd = self.watchdog.take();
        let mut pet = || {
            if let Some(w) = &mut wd {
                w.pet_if_due(now_ms());
            }
        };
        crate::shutdown::run(self.log, action, "shutdown", sigfd, &mut pet)
    }
}

fn emit_line(log: &Log, rate: &mut RateLimit, now: u64, name: &str, pid: Pid, text: &[u8]) {
    match rate.allow(now) {
        outlog::Allow::No => {}
        outlog::Allow::Yes => log.service_line(name, pid.raw(), text),
        outlog::Allow::YesAfterDropping(n) => {
            log!(log, Level::Warn, name, ": ", n, " output lines suppressed (more than ", outlog::LINES_PER_SEC, " lines/s)");
            log.service_line(name, pid.raw(), text);
        }
    }
}

fn flush_output(log: &Log, s: &mut Service, partials: &mut LinePool<OUT_LINE_BYTES, OUT_PARTIALS>) {
    let name = s.name.clone();
    let pid = s.out_pid;
    let rate = &mut s.rate;
    let now = now_ms();
    partials.flush(s.partial.take(), |text, _cut| emit_line(log, rate, now, &name, pid, text));
}

/// A unix socket bound at `path` (replacing a stale one), with `mode`; listening if a stream.
fn listen_socket(ty: SocketType, path: &core::ffi::CStr, mode: u32) -> Result<OwnedFd, Errno> {
    let fd = net::socket_unix(ty, true)?;
    let _ = fs::unlinkat(syscall::BorrowedFd::CWD, path, fs::AtFlags::EMPTY);
    net::bind_unix(&fd, path)?;
    fs::fchmodat(syscall::BorrowedFd::CWD, path, mode)?;
    if matches!(ty, SocketType::Stream) {
        net::listen(&fd, 16)?;
    }
    Ok(fd)
}

impl Piece for String<64> {
    fn put(&self, l: &mut Line) {
        l.push(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/services.md ("Capacities") gives the per-unit size: change both together.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_unit_costs_what_the_docs_say() {
        std::println!("Service: {} bytes", core::mem::size_of::<Service>());
        assert!(core::mem::size_of::<Service>() <= 432, "Service is {} bytes", core::mem::size_of::<Service>());
    }

    #[test]
    fn cheap_reap_passes_are_never_followed_by_a_pause() {
        assert_eq!(reap_pause_ms(0), 0);
        assert_eq!(reap_pause_ms(REAP_CHEAP_NS - 1), 0);
        assert_eq!(reap_pause_ms(REAP_CHEAP_NS), 3);
        assert_eq!(reap_pause_ms(2_500_000), 25);
        assert_eq!(reap_pause_ms(u64::MAX), REAP_PAUSE_MAX_MS);
    }

    #[test]
    fn cpu_time_in_nanoseconds() {
        assert_eq!(cpu_ns(Timespec { sec: 2, nsec: 5 }), 2_000_000_005);
        assert_eq!(cpu_ns(Timespec { sec: -1, nsec: 5 }), 5);
    }
}
