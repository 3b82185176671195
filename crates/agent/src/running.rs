//! Runs in progress, by id, so that a caller that goes away or `DELETE /run/{id}` cancels them.

use std::{collections::BTreeMap, sync::Arc};

use tokio_util::sync::CancellationToken;

/// Makes an id for a run.
pub fn new_run_id() -> String {
    format!("run_{}", uuid::Uuid::new_v4().simple())
}

/// Shared state of concurrent runs: their cancellation tokens by id.
#[derive(Debug, Clone, Default)]
pub struct RunningRuns {
    runs: Arc<std::sync::Mutex<BTreeMap<String, CancellationToken>>>,
}

impl RunningRuns {
    /// Registers a run; the guard removes it when dropped.
    pub fn register(&self, run_id: &str, cancel: CancellationToken) -> RunningGuard {
        self.lock().insert(run_id.to_string(), cancel.clone());
        RunningGuard {
            runs: self.clone(),
            run_id: run_id.to_string(),
            cancel,
        }
    }

    /// Cancels a run; false when no such run is going.
    pub fn cancel(&self, run_id: &str) -> bool {
        match self.lock().get(run_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every run in progress (shutdown).
    pub fn cancel_all(&self) {
        for token in self.lock().values() {
            token.cancel();
        }
    }

    /// Whether a run of this id is going.
    pub fn is_running(&self, run_id: &str) -> bool {
        self.lock().contains_key(run_id)
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CancellationToken>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Cancels its run and forgets it when dropped: a caller that goes away cancels what it started.
#[derive(Debug)]
pub struct RunningGuard {
    runs: RunningRuns,
    run_id: String,
    cancel: CancellationToken,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.runs.lock().remove(&self.run_id);
    }
}
