//! Time, injectable: the engine never reads the system clock directly, so tests (and the
//! conformance runner) run Wait states and retry back-off without sleeping.

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `deadline` has passed.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;

    /// A virtual clock moves only when told to, so a task's time limit is checked after the
    /// task instead of racing a real timer.
    fn is_virtual(&self) -> bool {
        false
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Ok(wait) = (deadline - Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// A clock that only moves when told to, or when something sleeps on it: sleeping jumps
/// straight to the deadline, so a one-day Wait costs nothing.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(start) }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default())
    }
}

impl Clock for ManualClock {
    fn is_virtual(&self) -> bool {
        true
    }

    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if deadline > *now {
            *now = deadline;
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_jumps_to_the_deadline_instead_of_sleeping() {
        let clock = ManualClock::default();
        let start = clock.now();
        clock.sleep_until(start + Duration::days(1)).await;
        assert_eq!(clock.now(), start + Duration::days(1));
        clock.sleep_until(start).await;
        assert_eq!(clock.now(), start + Duration::days(1));
    }
}
