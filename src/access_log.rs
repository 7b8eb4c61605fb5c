//! The access log's lines on the CLI (`sluice serve`): one per request, so their cost is paid
//! by every request. They are written by this layer rather than the general formatter, in the
//! same shape (`<time>  INFO sluice::access: request method=GET route="..." ...`), but without
//! its per-field `Debug` machinery, styling and date formatting: the time's text is made once a
//! second, and each line is built in a buffer the thread keeps.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::log_sink::LogSink;

/// Formats the events it is given (the caller filters them to the access log's target).
pub struct AccessLogLayer {
    sink: LogSink,
}

impl AccessLogLayer {
    pub fn new(sink: LogSink) -> AccessLogLayer {
        AccessLogLayer { sink }
    }
}

struct LineBuffers {
    line: String,
    fields: String,
    /// The second `seconds_text` shows, and `YYYY-MM-DDTHH:MM:SS` of it.
    second: u64,
    seconds_text: String,
}

thread_local! {
    static BUFFERS: RefCell<LineBuffers> = const {
        RefCell::new(LineBuffers {
            line: String::new(),
            fields: String::new(),
            second: u64::MAX,
            seconds_text: String::new(),
        })
    };
}

impl<S: Subscriber> Layer<S> for AccessLogLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        BUFFERS.with(|buffers| {
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                return;
            };
            let LineBuffers {
                line,
                fields,
                second,
                seconds_text,
            } = &mut *buffers;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            if now.as_secs() != *second {
                *second = now.as_secs();
                seconds_text.clear();
                if let Some(time) = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0) {
                    let _ = write!(seconds_text, "{}", time.format("%Y-%m-%dT%H:%M:%S"));
                }
            }
            line.clear();
            fields.clear();
            let metadata = event.metadata();
            let _ = write!(
                line,
                "{seconds_text}.{:06}Z {:>5} {}: ",
                now.subsec_micros(),
                metadata.level(),
                metadata.target()
            );
            event.record(&mut FieldWriter { line, fields });
            line.push_str(fields);
            line.push('\n');
            let mut sink = self.sink.clone();
            let _ = sink.write_all(line.as_bytes());
        });
    }
}

/// The message into the line, the other fields (` name=value`) after it.
struct FieldWriter<'a> {
    line: &'a mut String,
    fields: &'a mut String,
}

impl FieldWriter<'_> {
    fn name(&mut self, field: &Field) {
        self.fields.push(' ');
        self.fields.push_str(field.name());
        self.fields.push('=');
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.line.push_str(value);
            return;
        }
        self.name(field);
        // Quoted as the general formatter quotes; only text that needs escapes takes `Debug`.
        if value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ')
        {
            self.fields.push('"');
            self.fields.push_str(value);
            self.fields.push('"');
        } else {
            let _ = write!(self.fields, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        let _ = write!(self.fields, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        let _ = write!(self.fields, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // Microseconds are the finest a latency is worth; the shortest round-trip text of a
        // computed float carries noise digits (0.030636000000000004).
        self.name(field);
        let _ = write!(self.fields, "{value:.6}");
        while self.fields.ends_with('0') {
            self.fields.pop();
        }
        if self.fields.ends_with('.') {
            self.fields.pop();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.line, "{value:?}");
            return;
        }
        self.name(field);
        let _ = write!(self.fields, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::log_sink::log_sink;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_has_the_general_formatters_shape() {
        let captured = Captured::default();
        let (sink, guard) = log_sink(captured.clone());
        let subscriber = tracing_subscriber::registry().with(AccessLogLayer::new(sink));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "sluice::access",
                method = %"GET",
                route = "/datasets/{dataset}/records/{id}",
                status = 200u16,
                principal = "odd \"name\"\n",
                latency_ms = 0.030636000000000004f64,
                whole = 2.0f64,
                "request"
            );
        });
        drop(guard);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let (time, rest) = text.split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.len() == 27,
            "{time}"
        );
        assert_eq!(
            rest,
            " INFO sluice::access: request method=GET route=\"/datasets/{dataset}/records/{id}\" status=200 principal=\"odd \\\"name\\\"\\n\" latency_ms=0.030636 whole=2\n"
        );
    }
}
