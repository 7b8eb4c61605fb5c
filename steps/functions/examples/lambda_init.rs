//! How long each Lambda bootstrap takes to init, measured as Lambda measures its Init Duration:
//! from process start to the runtime's first `GET /2018-06-01/runtime/invocation/next`, through
//! a Runtime API endpoint served here. Each binary starts `--starts` times (20 by default) with
//! the settings a deployed function has (`backend = "aws"`, a bucket, tables) and its AWS calls
//! at `--endpoint` (an emulator holding the Gmail client secret `sluice/gmail/client-secret`,
//! which the OAuth functions read at init, as on AWS); the median, min and max are printed per
//! binary.
//!
//!     cargo run --release -p sluice-functions --example lambda_init -- DIR --endpoint URL [--starts N]
//!
//! DIR holds the bootstraps either flat (`DIR/sluice-stage`, what `cargo build --release`
//! leaves) or as `cargo lambda build` lays them out (`DIR/sluice-stage/bootstrap`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

fn bootstrap(dir: &Path, binary: &str) -> Option<PathBuf> {
    [dir.join(binary), dir.join(binary).join("bootstrap")]
        .into_iter()
        .find(|p| p.is_file())
}

/// One start: spawns `path`, waits for its first `invocation/next`, kills it.
fn init_once(path: &Path, binary: &str, endpoint: &str) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let started = Instant::now();
    let mut child = Command::new(path)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", address.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", binary),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "init-measurement"),
            ("AWS_SECRET_ACCESS_KEY", "init-measurement"),
            ("SLUICE_BACKEND", "aws"),
            ("SLUICE_AWS__BUCKET", "sluice-init"),
            ("SLUICE_AWS__RECORDS_TABLE", "sluice-init-records"),
            ("SLUICE_AWS__CONTROL_TABLE", "sluice-init-control"),
            ("SLUICE_AWS__ENDPOINT_URL", endpoint),
            ("SLUICE_GMAIL__SOURCE", "gmail"),
            ("SLUICE_GMAIL__CLIENT_ID", "init-measurement.apps.googleusercontent.com"),
            ("SLUICE_GMAIL__REDIRECT_URI", "https://example.com/oauth/callback"),
            (
                "SLUICE_API__STATE_MACHINE_ARN",
                "arn:aws:states:us-east-1:123456789012:stateMachine:init",
            ),
            ("RUST_LOG", "warn"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let deadline = started + Duration::from_secs(10);
    let outcome = loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut request_line = String::new();
                reader.read_line(&mut request_line)?;
                let elapsed = started.elapsed();
                if request_line.contains("/runtime/invocation/next") {
                    break Ok(elapsed);
                }
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
                if request_line.contains("/runtime/init/error") {
                    break Err(anyhow::anyhow!("{binary} reported an init error"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait()? {
                    break Err(anyhow::anyhow!("{binary} exited during init ({status})"));
                }
                if Instant::now() > deadline {
                    break Err(anyhow::anyhow!("{binary} asked for no event within 10 s"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => break Err(e.into()),
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output()?;
    outcome.with_context(|| String::from_utf8_lossy(&output.stderr).trim().to_string())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut starts = 20usize;
    let mut endpoint = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--starts" => starts = args.next().context("--starts takes a number")?.parse()?,
            "--endpoint" => endpoint = Some(args.next().context("--endpoint takes a URL")?),
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            other => bail!("unexpected argument {other}"),
        }
    }
    let usage = "usage: lambda_init DIR --endpoint URL [--starts N]";
    let dir = dir.context(usage)?;
    let endpoint = endpoint.context(usage)?;
    let binaries: Vec<&str> = sluice_functions::FUNCTIONS
        .iter()
        .map(|f| f.binary)
        .chain(sluice_functions::STANDALONE_FUNCTIONS.iter().map(|(binary, _)| *binary))
        .collect();
    println!(
        "{:<24} {:>9} {:>9} {:>9}  (init, ms, {starts} starts)",
        "function", "median", "min", "max"
    );
    let mut missing = Vec::new();
    for binary in binaries {
        let Some(path) = bootstrap(&dir, binary) else {
            missing.push(binary);
            continue;
        };
        let mut times = (0..starts)
            .map(|_| init_once(&path, binary, &endpoint))
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{binary:<24} {:>9.1} {:>9.1} {:>9.1}",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
    if !missing.is_empty() {
        bail!("no bootstrap in {} for {}", dir.display(), missing.join(", "));
    }
    Ok(())
}
