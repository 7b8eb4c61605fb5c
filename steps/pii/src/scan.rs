//! `sluice pii scan FILE`: one JSON object per entity, per line of UTF-8 text.

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::detector::{Cell, DetectError, Detector};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("line {line} is not valid UTF-8")]
    NotUtf8 { line: u64 },
    #[error("reading the input failed at line {line}: {source}")]
    Read {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the results failed: {0}")]
    Write(#[source] std::io::Error),
    #[error(transparent)]
    Detection(#[from] DetectError),
}

/// One output line.
#[derive(Debug, Serialize)]
struct Finding<'a> {
    line: u64,
    begin: usize,
    end: usize,
    #[serde(rename = "type")]
    kind: &'a str,
    score: f32,
}

/// What a scan saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    pub lines: u64,
    pub entities: u64,
}

const BATCH_BYTES: usize = 1024 * 1024;

/// Scans `input` line by line (1-based; offsets in code points within the line, end exclusive)
/// and writes `{"line","begin","end","type","score"}` objects, one per line, to `out`.
pub async fn scan<R: BufRead, W: Write>(
    mut input: R,
    detector: &dyn Detector,
    out: &mut W,
) -> Result<ScanSummary, ScanError> {
    let mut summary = ScanSummary::default();
    let mut batch: Vec<String> = Vec::new();
    let mut batch_bytes = 0;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = input.read_until(b'\n', &mut raw).map_err(|source| ScanError::Read {
            line: summary.lines + 1,
            source,
        })?;
        if read > 0 {
            summary.lines += 1;
            while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                raw.pop();
            }
            let line =
                String::from_utf8(std::mem::take(&mut raw)).map_err(|_| ScanError::NotUtf8 { line: summary.lines })?;
            batch_bytes += line.len();
            batch.push(line);
        }
        if (read == 0 && !batch.is_empty()) || batch_bytes >= BATCH_BYTES {
            let first_line = summary.lines - batch.len() as u64 + 1;
            summary.entities += write_batch(&batch, first_line, detector, out).await?;
            batch.clear();
            batch_bytes = 0;
        }
        if read == 0 {
            break;
        }
    }
    out.flush().map_err(ScanError::Write)?;
    Ok(summary)
}

async fn write_batch<W: Write>(
    lines: &[String],
    first_line: u64,
    detector: &dyn Detector,
    out: &mut W,
) -> Result<u64, ScanError> {
    let cells: Vec<Cell<'_>> = lines.iter().map(|l| Cell::new(l)).collect();
    let found = detector.detect(&cells).await?;
    let mut count = 0;
    for (offset, entities) in found.iter().enumerate() {
        for entity in entities {
            let finding = Finding {
                line: first_line + offset as u64,
                begin: entity.begin,
                end: entity.end,
                kind: entity.kind.as_str(),
                score: entity.score,
            };
            serde_json::to_writer(&mut *out, &finding).map_err(|err| ScanError::Write(err.into()))?;
            out.write_all(b"\n").map_err(ScanError::Write)?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::BuiltinDetector;

    #[tokio::test]
    async fn scan_prints_one_object_per_entity_with_line_and_code_point_offsets() {
        let input = "nothing here\r\n東京 mail: ana@example.com\n\nip 10.1.2.3";
        let mut out = Vec::new();
        let summary = scan(input.as_bytes(), &BuiltinDetector::new(), &mut out).await.unwrap();
        assert_eq!(summary, ScanSummary { lines: 4, entities: 2 });
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["line"], 2);
        assert_eq!(
            (lines[0]["begin"].as_u64(), lines[0]["end"].as_u64()),
            (Some(9), Some(24))
        );
        assert_eq!(lines[0]["type"], "EMAIL");
        assert_eq!(lines[1]["line"], 4);
        assert_eq!(lines[1]["type"], "IP_ADDRESS");
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_with_its_line() {
        let input: &[u8] = b"fine\nbad \xff byte\n";
        let err = scan(input, &BuiltinDetector::new(), &mut Vec::new()).await.unwrap_err();
        assert_eq!(err.to_string(), "line 2 is not valid UTF-8");
    }
}
