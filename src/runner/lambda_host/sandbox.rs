//! One sandbox: a function's process, started with Lambda's environment and its own Runtime API
//! endpoint, serving one invocation at a time. Its output goes to tracing at debug level (the
//! last lines are kept for the cause of a crash); dropping the sandbox kills its process group.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ProcessTable;

/// How a function's processes are started.
#[derive(Debug, Clone)]
pub(super) struct FunctionSpec {
    pub binary: String,
    pub path: PathBuf,
    pub working_dir: PathBuf,
    /// The whole environment (the process inherits nothing else).
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    pub function_arn: String,
}

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

    fn exited(&self, status: String) {
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

    fn remember(&self, line: String) {
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

/// A started process and its Runtime API; dropping it kills the process.
pub(super) struct Sandbox {
    pub shared: Arc<Shared>,
    invocations: mpsc::Sender<Invocation>,
    id: u64,
    server: JoinHandle<()>,
    processes: Arc<ProcessTable>,
}

impl Sandbox {
    pub async fn start(spec: &FunctionSpec, processes: Arc<ProcessTable>) -> Result<Sandbox, String> {
        let (invocations, events) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            binary: spec.binary.clone(),
            next: tokio::sync::Mutex::new(events),
            inner: Mutex::new(Inner::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot open a Runtime API port on 127.0.0.1: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("cannot read the Runtime API port: {e}"))?;
        let app = super::runtime_api::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "a local Lambda Runtime API stopped");
            }
        });
        let spawned = tokio::process::Command::new(&spec.path)
            .env_clear()
            .envs(spec.environment.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .current_dir(&spec.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so stopping it stops whatever it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                return Err(e.to_string());
            }
        };
        let id = processes.next_id();
        let pid = child.id();
        if let Some(pid) = pid {
            processes.insert(id, pid);
        }
        tracing::debug!(function = %spec.binary, pid, runtime_api = %address, "started a Lambda process");
        let forwarders = [
            child
                .stdout
                .take()
                .map(|out| forward(out, shared.clone(), pid, "stdout")),
            child
                .stderr
                .take()
                .map(|err| forward(err, shared.clone(), pid, "stderr")),
        ];
        let (watched, table) = (shared.clone(), processes.clone());
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => format!("cannot be waited for: {e}"),
            };
            table.remove(id);
            // Its last words come through the pipes just after it exits; a grandchild that
            // keeps them open must not hold the answer back.
            for forwarder in forwarders.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_millis(300), forwarder).await;
            }
            tracing::debug!(function = %watched.binary, pid, %status, "a Lambda process ended");
            watched.exited(status);
        });
        Ok(Sandbox {
            shared,
            invocations,
            id,
            server,
            processes,
        })
    }

    /// Queues the event for the process (which takes it on its next `next`).
    pub async fn dispatch(&self, invocation: Invocation) -> bool {
        self.invocations.send(invocation).await.is_ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.processes.kill(self.id);
        self.server.abort();
    }
}

fn forward(
    stream: impl AsyncRead + Unpin + Send + 'static,
    shared: Arc<Shared>,
    pid: Option<u32>,
    name: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    tracing::debug!(function = %shared.binary, pid, stream = name, "{text}");
                    shared.remember(text);
                }
            }
        }
    })
}
