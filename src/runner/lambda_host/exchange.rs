//! What a sandbox's Runtime API handlers and its invoking side share: the events on their way
//! to the process, the invocations waiting for their answer, and why the sandbox ended.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};

/// An event on its way to the process.
pub(super) struct Invocation {
    pub request_id: String,
    pub body: Bytes,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
}

/// How an invocation ended, as the sandbox saw it.
pub(super) enum Outcome {
    Response(Bytes),
    TooLarge {
        bytes: usize,
    },
    Error {
        error_type: Option<String>,
        message: Option<String>,
    },
    InitError {
        error_type: Option<String>,
        message: Option<String>,
    },
    Exited {
        during_init: bool,
        status: String,
        output: String,
    },
}

/// Why a sandbox takes no more invocations.
#[derive(Clone)]
enum Ended {
    InitError {
        error_type: Option<String>,
        message: Option<String>,
    },
    Exited {
        status: String,
    },
}

/// Lines of output kept for a crash's cause, and how long each may be.
const RECENT_LINES: usize = 5;
const LINE_CHARS: usize = 300;

#[derive(Default)]
struct Inner {
    pending: HashMap<String, oneshot::Sender<Outcome>>,
    /// The process has asked for an event: its init is done.
    polled: bool,
    ended: Option<Ended>,
    recent: VecDeque<String>,
}

/// What the Runtime API handlers and the invoking side share.
pub(super) struct Shared {
    pub binary: String,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(binary: String, events: mpsc::Receiver<Invocation>) -> Shared {
        Shared {
            binary,
            next: tokio::sync::Mutex::new(events),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next event for the process (`None` once the sandbox is gone).
    pub async fn next(&self) -> Option<Invocation> {
        self.lock().polled = true;
        self.next.lock().await.recv().await
    }

    /// Hands `outcome` to the invocation `id`; false when no such invocation waits.
    pub fn complete(&self, id: &str, outcome: Outcome) -> bool {
        match self.lock().pending.remove(id) {
            Some(waiting) => {
                let _ = waiting.send(outcome);
                true
            }
            None => false,
        }
    }

    pub fn init_failed(&self, error_type: Option<String>, message: Option<String>) {
        let mut inner = self.lock();
        inner.ended = Some(Ended::InitError {
            error_type: error_type.clone(),
            message: message.clone(),
        });
        for (_, waiting) in inner.pending.drain() {
            let _ = waiting.send(Outcome::InitError {
                error_type: error_type.clone(),
                message: message.clone(),
            });
        }
    }

    pub fn exited(&self, status: String) {
        let mut inner = self.lock();
        let output = recent_output(&inner.recent);
        let during_init = !inner.polled;
        if inner.ended.is_none() {
            inner.ended = Some(Ended::Exited { status: status.clone() });
        }
        for (_, waiting) in inner.pending.drain() {
            let _ = waiting.send(Outcome::Exited {
                during_init,
                status: status.clone(),
                output: output.clone(),
            });
        }
    }

    /// Waits for the answer to `id`, or says at once why this sandbox cannot give one.
    pub fn register(&self, id: &str) -> Result<oneshot::Receiver<Outcome>, Outcome> {
        let mut inner = self.lock();
        match inner.ended.clone() {
            Some(Ended::InitError { error_type, message }) => Err(Outcome::InitError { error_type, message }),
            Some(Ended::Exited { status }) => Err(Outcome::Exited {
                during_init: !inner.polled,
                status,
                output: recent_output(&inner.recent),
            }),
            None => {
                let (sender, receiver) = oneshot::channel();
                inner.pending.insert(id.to_string(), sender);
                Ok(receiver)
            }
        }
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended.is_some()
    }

    pub fn remember(&self, line: String) {
        let mut inner = self.lock();
        if inner.recent.len() == RECENT_LINES {
            inner.recent.pop_front();
        }
        inner.recent.push_back(line.chars().take(LINE_CHARS).collect());
    }
}

fn recent_output(recent: &VecDeque<String>) -> String {
    recent
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
