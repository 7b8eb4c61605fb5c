//! One sandbox: a function's process, started with Lambda's environment and its own Runtime API
//! endpoint, serving one invocation at a time. Its output goes to tracing at debug level (the
//! last lines are kept for the cause of a crash); dropping the sandbox kills its process group.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ProcessTable;
use super::exchange::{Invocation, Shared};

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
        let shared = Arc::new(Shared::new(spec.binary.clone(), events));
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
