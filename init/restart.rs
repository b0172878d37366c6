//! Restart policy for a service whose process exited and whose `Restart=` asks for a restart
//! (pure, host-tested): exponential back-off, and giving up on a unit that keeps failing.
//!
//! - The delay is `RestartSec` doubled for each consecutive quick exit, up to
//!   [`BACKOFF_CAP_MS`] (a `RestartSec` above the cap is kept as it is). A run that lasted
//!   longer than [`BURST_WINDOW_MS`] was not a quick exit: the doubling starts over.
//! - systemd's StartLimitBurst: a restart that would be the `BURST_FAILURES + 1`-th start
//!   within `BURST_WINDOW_MS` is refused, and the unit is marked failed.
//!
//! Times are milliseconds of a monotonic clock; a clock step back counts as no time passing.

/// Longest delay that doubling reaches.
pub const BACKOFF_CAP_MS: u64 = 30_000;
/// Starts allowed within [`BURST_WINDOW_MS`]; the next one is refused.
pub const BURST_FAILURES: u8 = 5;
/// The window of the start limit, and the run time that resets the doubling.
pub const BURST_WINDOW_MS: u64 = 60_000;

const RING: usize = BURST_FAILURES as usize;
// The ring's index wraps modulo BURST_FAILURES.
const _: () = assert!(BURST_FAILURES > 0);

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Start the service again after this many milliseconds.
    RestartIn(u64),
    /// Too many starts in the window: mark the unit failed.
    GiveUp,
}

/// The restart history of one unit: 48 bytes.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Backoff {
    /// Start times of the last runs, oldest overwritten first.
    starts: [u64; RING],
    /// Where the next start time goes.
    next: u8,
    /// How many of `starts` are set.
    count: u8,
    /// Consecutive quick exits, the last one included.
    quick_exits: u8,
}

impl Backoff {
    pub const fn new() -> Backoff {
        Backoff { starts: [0; RING], next: 0, count: 0, quick_exits: 0 }
    }

    /// The service's process exited at `now_ms` after running `ran_ms`; decides what next.
    pub fn on_exit(&mut self, now_ms: u64, restart_sec_ms: u64, ran_ms: u64) -> Decision {
        self.record_start(now_ms.saturating_sub(ran_ms));
        if ran_ms > BURST_WINDOW_MS {
            self.quick_exits = 0;
        }
        self.quick_exits = self.quick_exits.saturating_add(1);

        let cap = BACKOFF_CAP_MS.max(restart_sec_ms);
        let mut delay = restart_sec_ms;
        for _ in 1..self.quick_exits {
            if delay >= cap {
                break;
            }
            delay = delay.saturating_mul(2);
        }
        let delay = delay.min(cap);

        let restart_at = now_ms.saturating_add(delay);
        let recent = self.starts_set().filter(|&&t| restart_at.saturating_sub(t) < BURST_WINDOW_MS);
        if recent.count() >= RING {
            return Decision::GiveUp;
        }
        Decision::RestartIn(delay)
    }

    /// Forgets the history, for a start asked for by hand (`start`, `restart`).
    pub fn reset(&mut self) {
        *self = Backoff::new();
    }

    /// Consecutive quick exits so far.
    pub fn quick_exits(&self) -> u8 {
        self.quick_exits
    }

    fn record_start(&mut self, at: u64) {
        if let Some(slot) = self.starts.get_mut(usize::from(self.next)) {
            *slot = at;
        }
        self.next = self.next.saturating_add(1) % BURST_FAILURES;
        self.count = self.count.saturating_add(1).min(BURST_FAILURES);
    }

    fn starts_set(&self) -> impl Iterator<Item = &u64> {
        self.starts.iter().take(usize::from(self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a service that crashes `ran` ms after each start, restarting when told; returns
    /// the delays and how it ended.
    fn crash_loop(restart_sec: u64, ran: u64, max: usize) -> (Vec<u64>, bool) {
        let mut b = Backoff::new();
        let (mut now, mut delays) = (1_000_000u64, Vec::new());
        for _ in 0..max {
            now = now.saturating_add(ran);
            match b.on_exit(now, restart_sec, ran) {
                Decision::RestartIn(d) => {
                    delays.push(d);
                    now = now.saturating_add(d);
                }
                Decision::GiveUp => return (delays, true),
            }
        }
        (delays, false)
    }

    #[test]
    fn quick_crashes_double_then_give_up_after_the_burst() {
        // Five starts, four restarts with doubling delays; the sixth start is refused.
        assert_eq!(crash_loop(100, 10, 100), (vec![100, 200, 400, 800], true));
        assert_eq!(crash_loop(0, 0, 100), (vec![0, 0, 0, 0], true));
    }

    #[test]
    fn delays_stop_at_the_cap() {
        let (delays, gave_up) = crash_loop(10_000, 5_000, 8);
        // Starts 15 s, 25 s, 35 s, 35 s... apart: at most three fit in a minute.
        assert_eq!(delays, [10_000, 20_000, 30_000, 30_000, 30_000, 30_000, 30_000, 30_000]);
        assert!(!gave_up);
        // A RestartSec above the cap is kept, not doubled.
        assert_eq!(crash_loop(45_000, 0, 3), (vec![45_000, 45_000, 45_000], false));
        // Large values never overflow.
        assert_eq!(crash_loop(u64::MAX / 3, 0, 3).0, vec![u64::MAX / 3; 3]);
    }

    #[test]
    fn a_long_run_resets_the_doubling() {
        let mut b = Backoff::new();
        let mut now = 0;
        for expected in [1000, 2000, 4000] {
            now += 1000;
            assert_eq!(b.on_exit(now, 1000, 1000), Decision::RestartIn(expected));
            now += expected;
        }
        assert_eq!(b.quick_exits(), 3);
        now += BURST_WINDOW_MS + 1;
        assert_eq!(b.on_exit(now, 1000, BURST_WINDOW_MS + 1), Decision::RestartIn(1000));
        assert_eq!(b.quick_exits(), 1);
        now += 1000 + 10;
        assert_eq!(b.on_exit(now, 1000, 10), Decision::RestartIn(2000));
        // Exactly the window is still a quick exit.
        now += 2000 + BURST_WINDOW_MS;
        assert_eq!(b.on_exit(now, 1000, BURST_WINDOW_MS), Decision::RestartIn(4000));
    }

    #[test]
    fn starts_older_than_the_window_do_not_count() {
        let mut b = Backoff::new();
        // Four quick crashes, then a pause of a window: the burst count starts over.
        let mut now = 0;
        for _ in 0..4 {
            now += 10;
            assert!(matches!(b.on_exit(now, 0, 10), Decision::RestartIn(0)));
        }
        now += BURST_WINDOW_MS;
        for _ in 0..4 {
            now += 10;
            assert!(matches!(b.on_exit(now, 0, 10), Decision::RestartIn(0)));
        }
        now += 10;
        assert_eq!(b.on_exit(now, 0, 10), Decision::GiveUp);
        // Still refused on a further exit, until reset.
        assert_eq!(b.on_exit(now + 5, 0, 5), Decision::GiveUp);
        b.reset();
        assert_eq!(b, Backoff::default());
        assert_eq!(b.on_exit(now + 10, 0, 5), Decision::RestartIn(0));
    }

    #[test]
    fn the_back_off_delay_counts_towards_leaving_the_window() {
        // Starts at 0, 100, 300, 700 and 1500 ms: the sixth would be within the minute.
        // With RestartSec=20 s the starts are 20 to 30 s apart: never six in a minute.
        assert!(crash_loop(100, 0, 5).1);
        let (delays, gave_up) = crash_loop(20_000, 0, 5);
        assert_eq!(delays, [20_000, 30_000, 30_000, 30_000, 30_000]);
        assert!(!gave_up);
    }

    #[test]
    fn a_clock_step_back_is_harmless() {
        let mut b = Backoff::new();
        assert_eq!(b.on_exit(5000, 100, 10_000), Decision::RestartIn(100));
        assert_eq!(b.on_exit(10, 100, 0), Decision::RestartIn(200));
        assert_eq!(b.on_exit(0, 100, u64::MAX), Decision::RestartIn(100));
        let mut b = Backoff::new();
        for _ in 0..300 {
            let _ = b.on_exit(u64::MAX, u64::MAX, 0);
        }
        assert_eq!(b.quick_exits(), u8::MAX);
    }
}
