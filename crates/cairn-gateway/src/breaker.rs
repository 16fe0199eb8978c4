//! A circuit breaker per target: after enough consecutive failures the target is skipped for a
//! cool-down, then one trial call decides whether it closes again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before allowing one trial.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is in flight; others are refused until it reports.
    HalfOpen,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        CircuitBreaker {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go to this target now. An open circuit past its cool-down lets exactly
    /// one caller through as a trial.
    pub fn allow(&self, now: Instant) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn record_success(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::Closed { failures: 0 };
        }
    }

    /// Records a failure that says something about the target's health (not a bad request).
    pub fn record_failure(&self, now: Instant) {
        if let Ok(mut state) = self.state.lock() {
            *state = match *state {
                State::Closed { failures } if failures + 1 < self.settings.failure_threshold => {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
                _ => State::Open {
                    until: now + self.settings.cool_down,
                },
            };
        }
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .map(|state| !matches!(*state, State::Closed { .. }))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_half_opens_after_the_cool_down() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 3,
            cool_down: Duration::from_secs(10),
        });
        let start = Instant::now();
        breaker.record_failure(start);
        breaker.record_failure(start);
        assert!(breaker.allow(start), "two failures: still closed");
        breaker.record_failure(start);
        assert!(
            !breaker.allow(start + Duration::from_secs(9)),
            "open during the cool-down"
        );
        assert!(
            breaker.allow(start + Duration::from_secs(10)),
            "one trial after it"
        );
        assert!(!breaker.allow(start + Duration::from_secs(10)), "only one");
        breaker.record_failure(start + Duration::from_secs(10));
        assert!(
            !breaker.allow(start + Duration::from_secs(15)),
            "a failed trial reopens it"
        );
        assert!(breaker.allow(start + Duration::from_secs(20)));
        breaker.record_success();
        assert!(
            breaker.allow(start + Duration::from_secs(20)) && !breaker.is_open(),
            "a good trial closes it"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 2,
            cool_down: Duration::from_secs(10),
        });
        let now = Instant::now();
        breaker.record_failure(now);
        breaker.record_success();
        breaker.record_failure(now);
        assert!(breaker.allow(now));
    }
}
