//! The hardware watchdog (`autoinit.watchdog=/dev/watchdogN[,SECONDS]`): PID 1 opens it, sets
//! the timeout and pets it from its main loop, so a wedged PID 1 resets the board. Nothing is
//! armed unless asked. Poweroff and halt disarm it with the magic close; a reboot keeps
//! petting until reboot(2).

use crate::boot::Path;
use crate::log::{Level, Line, Log, Piece};
use syscall::fs::{self, OFlags};
use syscall::{watchdog as wdt, OwnedFd};

/// Timeout used when the command line gives none and the driver's cannot be read.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;

pub struct Watchdog {
    fd: Option<OwnedFd>,
    dev: heapless::String<32>,
    timeout_secs: u32,
    next_pet_ms: u64,
    pets: u64,
}

impl Watchdog {
    /// Opens and arms `dev`. Errors are logged; the system runs on without a watchdog.
    pub fn open(log: &Log, dev: &str, secs: Option<u32>, now_ms: u64) -> Option<Watchdog> {
        let p = Path::of(&[dev.as_bytes()])?;
        let fd = match fs::open(p.c(), OFlags::WRONLY | OFlags::CLOEXEC, 0) {
            Ok(fd) => fd,
            Err(e) => {
                log!(log, Level::Error, "watchdog: open ", dev, ": ", e, "; running without a watchdog");
                return None;
            }
        };
        let timeout = match secs {
            Some(s) => match wdt::wdt_set_timeout(&fd, s) {
                Ok(actual) => actual,
                Err(e) => {
                    log!(log, Level::Warn, "watchdog: set timeout of ", dev, " to ", s, " s: ", e, "; keeping the driver's");
                    wdt::wdt_get_timeout(&fd).unwrap_or(DEFAULT_TIMEOUT_SECS)
                }
            },
            None => wdt::wdt_get_timeout(&fd).unwrap_or(DEFAULT_TIMEOUT_SECS),
        }
        .max(1);
        let _ = wdt::wdt_keepalive(&fd);
        let mut name = heapless::String::new();
        let _ = name.push_str(dev.get(..dev.len().min(32)).unwrap_or(""));
        let w = Watchdog { fd: Some(fd), dev: name, timeout_secs: timeout, next_pet_ms: 0, pets: 1 };
        log!(log, Level::Info, "watchdog: ", dev, " armed, timeout ", timeout, " s, petted every ", w.interval_ms(), " ms");
        let mut w = w;
        w.next_pet_ms = now_ms.saturating_add(w.interval_ms());
        Some(w)
    }

    /// A third of the timeout: two pets may be late before the board resets.
    fn interval_ms(&self) -> u64 {
        (u64::from(self.timeout_secs) * 1000 / 3).max(200)
    }

    pub fn next_pet(&self) -> u64 {
        self.next_pet_ms
    }

    pub fn pet_if_due(&mut self, now_ms: u64) {
        if now_ms < self.next_pet_ms {
            return;
        }
        if let Some(fd) = &self.fd {
            let _ = wdt::wdt_keepalive(fd);
            self.pets = self.pets.wrapping_add(1);
        }
        self.next_pet_ms = now_ms.saturating_add(self.interval_ms());
    }

    /// Magic close: the driver stops the timer (unless built with nowayout).
    pub fn disarm(mut self, log: &Log) {
        if let Some(fd) = self.fd.take() {
            match wdt::wdt_magic_close(fd) {
                Ok(()) => log!(log, Level::Info, "watchdog: ", self.dev.as_str(), " disarmed"),
                Err(e) => log!(log, Level::Warn, "watchdog: disarm ", self.dev.as_str(), ": ", e),
            }
        }
    }

    /// For `status`: `watchdog /dev/watchdog0: armed, timeout 15 s, 42 pets`.
    pub fn describe(&self, l: &mut Line) {
        "watchdog ".put(l);
        self.dev.as_str().put(l);
        ": armed, timeout ".put(l);
        self.timeout_secs.put(l);
        " s, ".put(l);
        self.pets.put(l);
        " pets".put(l);
    }
}
