//! Where the CLI's log lines go: a shared buffer that a writer thread empties to stderr every
//! few milliseconds, or at once when a batch fills. A request (the access log of `sluice serve`
//! writes a line each) only copies its line; the write system call is shared by every line of
//! the interval, where a writer that flushed whenever its queue ran dry made one or two per line
//! under load. No line is dropped: past [`MAX_PENDING_BYTES`] a logging thread waits for the
//! writer instead.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in the buffer.
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A batch this big is written without waiting for the interval.
const BATCH_BYTES: usize = 64 * 1024;
/// Lines held at most; a logging thread waits while the buffer is fuller.
const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer (a batch is full, or the sink is closing).
    filled: Condvar,
    /// Wakes logging threads waiting for room.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves at worst a partial line: still usable.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `MakeWriter` side: cheap to clone, one per log event.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

impl Write for LogSink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.bytes.len() > MAX_PENDING_BYTES && !pending.closed {
            pending = self
                .shared
                .drained
                .wait(pending)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        pending.bytes.extend_from_slice(line);
        if pending.bytes.len() >= BATCH_BYTES {
            self.shared.filled.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

/// Owns the writer thread: dropping it writes what is left and waits for that.
#[must_use = "lines logged after it is dropped are not written"]
pub struct LogSinkGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogSinkGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_one();
        if let Some(writer) = self.writer.take() {
            // The writer thread cannot panic short of a broken stderr, which loses nothing
            // more than it already has.
            let _ = writer.join();
        }
    }
}

/// A sink writing to `out` on its own thread.
pub fn log_sink(mut out: impl Write + Send + 'static) -> (LogSink, LogSinkGuard) {
    let shared = Arc::new(Shared::default());
    let writer_shared = shared.clone();
    let writer = std::thread::Builder::new().name("sluice-log".into()).spawn(move || {
        let mut batch = Vec::with_capacity(BATCH_BYTES);
        loop {
            let closed = {
                let mut pending = writer_shared.lock();
                if pending.bytes.len() < BATCH_BYTES && !pending.closed {
                    pending = writer_shared
                        .filled
                        .wait_timeout(pending, FLUSH_INTERVAL)
                        .map(|(pending, _)| pending)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
                std::mem::swap(&mut batch, &mut pending.bytes);
                pending.closed
            };
            writer_shared.drained.notify_all();
            if !batch.is_empty() {
                // Nowhere to report a failing stderr: the lines are lost, the program goes on.
                let _ = out.write_all(&batch).and_then(|()| out.flush());
                batch.clear();
            }
            if closed {
                break;
            }
        }
    });
    let writer = writer.ok();
    (LogSink { shared: shared.clone() }, LogSinkGuard { shared, writer })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared vector, counting its writes.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut inner = self.0.lock().unwrap();
            inner.0.extend_from_slice(bytes);
            inner.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_in_order_in_few_writes() {
        let recorder = Recorder::default();
        let (sink, guard) = log_sink(recorder.clone());
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for line in 0..20_000 {
                        sink.write_all(format!("thread {thread} line {line}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = recorder.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        for thread in 0..4 {
            let lines: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {thread} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(lines, (0..20_000).collect::<Vec<_>>(), "thread {thread}");
        }
        assert!(writes < 80_000 / 50, "{writes} writes for 80,000 lines");
    }

    #[test]
    fn a_quiet_sink_still_writes_its_line_within_the_interval() {
        let recorder = Recorder::default();
        let (mut sink, _guard) = log_sink(recorder.clone());
        sink.write_all(b"one line\n").unwrap();
        // Written by the interval's timer, not by a full batch or a closing guard.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while recorder.0.lock().unwrap().0.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_INTERVAL);
        }
        assert_eq!(recorder.0.lock().unwrap().0, b"one line\n");
    }
}
