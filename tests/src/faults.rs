//! A store that makes its caller die at a chosen point: after the named call completes (its write
//! is in the table), the call panics, which ends the handler's task and its connection without an
//! answer, as when a Lambda aborts on a panic, runs out of memory or times out right there. The rest
//! of the world (the table, the simulator) goes on.

use std::sync::{Arc, Mutex};

use crate::probed::{Probed, StoreCall, StoreProbe};

/// A store call after which the caller can be made to hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangPoint {
    /// After a dedup claim that is the caller's.
    Claim,
    /// After a reply's CardKit entity was created and kept, before the card is sent.
    KeepReplyEntity,
    /// After a reply's text was sent and kept, before the card is sent.
    KeepReplyText,
    /// After a click's state write and job enqueue (one transaction).
    UpdateCardAndEnqueue,
}

/// The probe behind [`HangAfter`]: the armed point, until it fires.
#[derive(Default)]
pub struct Hang {
    armed: Mutex<Option<HangPoint>>,
}

impl StoreProbe for Hang {
    fn after(&self, call: StoreCall, took: bool) {
        let point = match call {
            StoreCall::Claim if took => HangPoint::Claim,
            StoreCall::KeepReplyEntity => HangPoint::KeepReplyEntity,
            StoreCall::KeepReplyText => HangPoint::KeepReplyText,
            StoreCall::UpdateCardAndEnqueue => HangPoint::UpdateCardAndEnqueue,
            _ => return,
        };
        let fire = {
            let mut armed = self.armed.lock().unwrap();
            let fire = *armed == Some(point);
            if fire {
                *armed = None;
            }
            fire
        };
        if fire {
            // Not a pending future: a handler's own answer timeout would answer for it.
            panic!("simulated crash after {point:?}");
        }
    }
}

/// Wraps a store; [`HangAfter::arm`] makes the next call at a point die, once.
pub type HangAfter<S> = Probed<S, Hang>;

impl<S> Probed<S, Hang> {
    pub fn new(inner: Arc<S>) -> Self {
        Self::with(inner, Hang::default())
    }

    /// The next call at `point` completes in the table, then its caller dies.
    pub fn arm(&self, point: HangPoint) {
        *self.probe().armed.lock().unwrap() = Some(point);
    }

    /// Whether the armed point was reached (the crash happened).
    pub fn fired(&self) -> bool {
        self.probe().armed.lock().unwrap().is_none()
    }
}
