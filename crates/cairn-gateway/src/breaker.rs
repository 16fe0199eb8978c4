//! A circuit breaker per target: after enough consecutive failures the target is skipped for a
//! cool-down, then one trial call decides whether it closes again. Every call goes through a
//! [`Pass`], so a trial always ends in closed or open, whatever its outcome (even none).

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

    /// A pass for a call to this target now, or `None` while the circuit is open. An open
    /// circuit past its cool-down lets exactly one caller through as a trial, and every trial ends
    /// the half-open state: a success or an answer the target gave (even a refusal of the
    /// request) closes it, a failure of the target opens it again, and a trial that ends without
    /// an outcome (its caller went away) lets the next call be the trial.
    pub fn allow(&self, now: Instant) -> Option<Pass<'_>> {
        let mut state = self.lock();
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => return None,
        };
        Some(Pass {
            breaker: self,
            trial,
            settled: false,
        })
    }

    pub fn record_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// Records a failure that says something about the target's health (not a bad request).
    pub fn record_failure(&self, now: Instant) {
        let mut state = self.lock();
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data: a panic elsewhere while holding it leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

/// Leave to call a target, from [`CircuitBreaker::allow`]; its outcome goes back through it.
#[derive(Debug)]
pub struct Pass<'a> {
    breaker: &'a CircuitBreaker,
    /// Whether this call is the trial of a half-open circuit.
    trial: bool,
    settled: bool,
}

impl Pass<'_> {
    pub fn success(&mut self) {
        self.settled = true;
        self.breaker.record_success();
    }

    /// The target failed in a way that says it is unhealthy.
    pub fn failure(&mut self, now: Instant) {
        self.settled = true;
        self.breaker.record_failure(now);
    }

    /// The target asked to be left alone for `wait` (a 429 with `Retry-After`): the circuit opens
    /// for that long, whatever the count, so other targets serve meanwhile.
    pub fn back_off(&mut self, now: Instant, wait: Duration) {
        self.settled = true;
        let mut state = self.breaker.lock();
        let until = now + wait;
        *state = match *state {
            State::Open { until: later } if later > until => State::Open { until: later },
            _ => State::Open { until },
        };
    }

    /// The target answered, refusing the request (invalid, too long, unknown model): it is up.
    pub fn answered(&mut self) {
        self.settled = true;
        if self.trial {
            self.breaker.record_success();
        }
    }
}

impl Drop for Pass<'_> {
    /// A trial dropped before its outcome (the caller went away): the next call is the trial.
    fn drop(&mut self) {
        if self.trial && !self.settled {
            let mut state = self.breaker.lock();
            if *state == State::HalfOpen {
                *state = State::Open {
                    until: Instant::now(),
                };
            }
        }
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
        assert!(breaker.allow(start).is_some(), "two failures: still closed");
        breaker.record_failure(start);
        assert!(
            breaker.allow(start + Duration::from_secs(9)).is_none(),
            "open during the cool-down"
        );
        let mut trial = breaker
            .allow(start + Duration::from_secs(10))
            .expect("one trial after it");
        assert!(
            breaker.allow(start + Duration::from_secs(10)).is_none(),
            "only one"
        );
        trial.failure(start + Duration::from_secs(10));
        assert!(
            breaker.allow(start + Duration::from_secs(15)).is_none(),
            "a failed trial reopens it"
        );
        breaker
            .allow(start + Duration::from_secs(20))
            .expect("a trial")
            .success();
        assert!(
            breaker.allow(start + Duration::from_secs(20)).is_some() && !breaker.is_open(),
            "a good trial closes it"
        );
    }

    /// A breaker opened by one failure with a 10 s cool-down, and the time its trial may start.
    fn opened() -> (CircuitBreaker, Instant) {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 1,
            cool_down: Duration::from_secs(10),
        });
        let start = Instant::now();
        breaker.record_failure(start);
        (breaker, start + Duration::from_secs(10))
    }

    #[test]
    fn every_trial_ends_half_open() {
        // A trial the target answers, refusing the request: the target is up, the circuit closes.
        let (breaker, later) = opened();
        breaker.allow(later).expect("the trial").answered();
        assert!(!breaker.is_open(), "an answered trial closes the circuit");

        // A trial that succeeds closes it; one that fails reopens it for a cool-down.
        let (breaker, later) = opened();
        breaker.allow(later).expect("the trial").success();
        assert!(!breaker.is_open());
        let (breaker, later) = opened();
        breaker.allow(later).expect("the trial").failure(later);
        assert!(breaker.is_open() && breaker.allow(later).is_none());
        assert!(breaker.allow(later + Duration::from_secs(10)).is_some());

        // A trial whose caller went away: the next call is a trial again, at once.
        let (breaker, later) = opened();
        let trial = breaker.allow(later).expect("the trial");
        assert!(breaker.allow(later).is_none(), "one trial at a time");
        drop(trial);
        let mut next = breaker
            .allow(later)
            .expect("a new trial after the dropped one");
        next.success();
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_wait_the_target_asks_for_opens_the_circuit_for_that_long() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 5,
            cool_down: Duration::from_secs(1),
        });
        let now = Instant::now();
        breaker
            .allow(now)
            .expect("closed")
            .back_off(now, Duration::from_secs(30));
        assert!(breaker.allow(now + Duration::from_secs(29)).is_none());
        assert!(breaker.allow(now + Duration::from_secs(30)).is_some());
    }

    #[test]
    fn an_answered_call_of_a_closed_circuit_changes_nothing() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 2,
            cool_down: Duration::from_secs(10),
        });
        let now = Instant::now();
        breaker.record_failure(now);
        breaker.allow(now).expect("closed").answered();
        breaker.record_failure(now);
        assert!(
            breaker.is_open(),
            "the answered call did not reset the count"
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
        assert!(breaker.allow(now).is_some());
    }
}
