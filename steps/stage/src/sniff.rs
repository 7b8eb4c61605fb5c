//! Recognizing a CSV by its content and normalizing it to UTF-8 without a BOM.
//!
//! The file is streamed through an `encoding_rs` decoder (UTF-8 by default, or the declared
//! encoding; a BOM overrides either), so memory stays flat whatever the file's size.

use std::io::{BufWriter, Read, Write};

use encoding_rs::{DecoderResult, Encoding, UTF_8};

/// Why a file is not a CSV this stage can stage. `code()` is the machine-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Empty,
    TooLarge {
        size: u64,
        limit: u64,
    },
    Binary {
        kind: &'static str,
    },
    InvalidEncoding {
        encoding: &'static str,
        line: u64,
        byte_offset: u64,
    },
    NoDataRows,
    WrongDelimiter {
        found: char,
    },
    InvalidHeader {
        column: usize,
        problem: &'static str,
    },
    NotTabular {
        line: u64,
    },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Empty => "empty",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Binary { .. } => "not_csv",
            Refusal::InvalidEncoding { .. } => "invalid_encoding",
            Refusal::NoDataRows => "header_only",
            Refusal::WrongDelimiter { .. } => "wrong_delimiter",
            Refusal::InvalidHeader { .. } => "invalid_header",
            Refusal::NotTabular { .. } => "not_csv",
        }
    }

    /// The line the problem is on, when it has one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Refusal::InvalidEncoding { line, .. } | Refusal::NotTabular { line } => Some(*line),
            Refusal::NoDataRows | Refusal::WrongDelimiter { .. } | Refusal::InvalidHeader { .. } => Some(1),
            _ => None,
        }
    }

    /// A sentence naming the file (and line) and what is wrong with it.
    pub fn describe(&self, file: &str) -> String {
        match self {
            Refusal::Empty => format!("{file} is empty"),
            Refusal::TooLarge { size, limit } => {
                format!("{file} is {size} bytes, over the {limit}-byte limit (stage.max_attachment_bytes)")
            }
            Refusal::Binary { kind } => format!("{file} is {kind}, not a CSV"),
            Refusal::InvalidEncoding {
                encoding,
                line,
                byte_offset,
            } => format!(
                "{file} line {line}: invalid {encoding} at byte offset {byte_offset}; declare the file's encoding \
                 (datasets.<name>.encoding) if it is not UTF-8"
            ),
            Refusal::NoDataRows => format!("{file} line 1: only a header, no data rows"),
            Refusal::WrongDelimiter { found } => {
                format!("{file} line 1: the header is split by {found:?}, not by commas")
            }
            Refusal::InvalidHeader { column, problem } => {
                format!("{file} line 1: header column {column} {problem}")
            }
            Refusal::NotTabular { line } => {
                format!("{file} line {line}: text without a consistent comma-separated layout, not a CSV")
            }
        }
    }
}

/// What normalizing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The encoding the input was read as (`UTF-8`, `UTF-16LE`, `windows-1252`, ...).
    pub encoding: &'static str,
    pub had_bom: bool,
    pub bytes_written: u64,
}

const MAGIC: &[(&[u8], &str)] = &[
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (xlsx, docx or zip)"),
    (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "an OLE2 document (xls or doc)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xFF\xD8\xFF", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1F\x8B", "a gzip archive"),
    (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
    (b"Rar!\x1A\x07", "a RAR archive"),
];

/// Recognizes binary formats from the first bytes.
pub fn detect_binary(head: &[u8]) -> Option<&'static str> {
    MAGIC
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}

/// Decodes `input` (in `declared` encoding, or UTF-8; a BOM wins) into UTF-8 on `output`.
/// Refuses binary content (magic numbers or NUL characters) and undecodable bytes.
pub fn normalize(
    mut input: impl Read,
    declared: Option<&'static Encoding>,
    output: impl Write,
) -> Result<Result<Normalized, Refusal>, std::io::Error> {
    let mut output = BufWriter::with_capacity(256 * 1024, output);
    let mut input_buffer = vec![0u8; 256 * 1024];
    let mut output_buffer = vec![0u8; 256 * 1024 * 3 + 16];
    let encoding = declared.unwrap_or(UTF_8);
    let mut decoder = encoding.new_decoder();
    let mut first_chunk = true;
    let mut consumed: u64 = 0;
    let mut lines_done: u64 = 0;
    let mut written: u64 = 0;
    let mut had_bom = false;
    loop {
        let read = read_full(&mut input, &mut input_buffer)?;
        let last = read < input_buffer.len();
        let mut chunk = &input_buffer[..read];
        if first_chunk {
            first_chunk = false;
            if read == 0 {
                return Ok(Err(Refusal::Empty));
            }
            if let Some(kind) = detect_binary(chunk) {
                return Ok(Err(Refusal::Binary { kind }));
            }
            had_bom = Encoding::for_bom(chunk).is_some();
        }
        loop {
            let (result, read_now, written_now) =
                decoder.decode_to_utf8_without_replacement(chunk, &mut output_buffer, last);
            let produced = &output_buffer[..written_now];
            if produced.contains(&0) {
                return Ok(Err(Refusal::Binary {
                    kind: "binary data (it holds NUL bytes)",
                }));
            }
            lines_done += produced.iter().filter(|&&b| b == b'\n').count() as u64;
            output.write_all(produced)?;
            written += written_now as u64;
            consumed += read_now as u64;
            chunk = &chunk[read_now..];
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(bad, _) => {
                    return Ok(Err(Refusal::InvalidEncoding {
                        encoding: decoder.encoding().name(),
                        line: lines_done + 1,
                        byte_offset: consumed.saturating_sub(u64::from(bad)),
                    }));
                }
            }
        }
        if last {
            break;
        }
    }
    output.flush()?;
    Ok(Ok(Normalized {
        encoding: decoder.encoding().name(),
        had_bom,
        bytes_written: written,
    }))
}

fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// How many records of a normalized file to look at when judging its shape.
const SAMPLE_RECORDS: usize = 200;

/// Judges the shape of normalized UTF-8 text: a header of distinct, non-empty names and at
/// least one data row. Returns the number of header columns. Ragged rows further down are
/// ingest's business (it reports them line by line).
pub fn check_shape(input: impl Read) -> Result<usize, Refusal> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(Refusal::Empty),
        Some(Err(_)) => return Err(Refusal::NotTabular { line: 1 }),
        Some(Ok(header)) => header,
    };
    if header.iter().all(|field| field.iter().all(u8::is_ascii_whitespace)) {
        return Err(Refusal::Empty);
    }
    let columns = header.len();
    if columns == 1 {
        let only = &header[0];
        for delimiter in [';', '\t', '|'] {
            if only.contains(&(delimiter as u8)) {
                return Err(Refusal::WrongDelimiter { found: delimiter });
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for (index, name) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(name).trim().to_string();
        if name.is_empty() {
            return Err(Refusal::InvalidHeader {
                column: index + 1,
                problem: "is empty",
            });
        }
        if !names.insert(name) {
            return Err(Refusal::InvalidHeader {
                column: index + 1,
                problem: "repeats an earlier column name",
            });
        }
    }
    let mut data_rows = 0;
    for record in records.take(SAMPLE_RECORDS) {
        let line = record.as_ref().ok().and_then(|r| r.position()).map_or(0, |p| p.line());
        let record = record.map_err(|_| Refusal::NotTabular { line })?;
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        // A single-column "CSV" whose lines hold commas is prose, not a table.
        if columns == 1 && record.len() > 1 {
            return Err(Refusal::NotTabular { line });
        }
        data_rows += 1;
    }
    if data_rows == 0 {
        return Err(Refusal::NoDataRows);
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], declared: Option<&'static Encoding>) -> Result<(String, Normalized), Refusal> {
        let mut out = Vec::new();
        let normalized = normalize(input, declared, &mut out).unwrap()?;
        Ok((String::from_utf8(out).unwrap(), normalized))
    }

    #[test]
    fn utf8_bom_is_removed() {
        let (text, normalized) = run(b"\xEF\xBB\xBFid,name\n1,Zo\xC3\xAB\n", None).unwrap();
        assert_eq!(text, "id,name\n1,Zoë\n");
        assert!(normalized.had_bom);
        assert_eq!(normalized.encoding, "UTF-8");
    }

    #[test]
    fn utf16_with_bom_is_converted() {
        let mut input = vec![0xFF, 0xFE];
        for unit in "id,name\n1,Zoë\n".encode_utf16() {
            input.extend_from_slice(&unit.to_le_bytes());
        }
        let (text, normalized) = run(&input, None).unwrap();
        assert_eq!(text, "id,name\n1,Zoë\n");
        assert_eq!(normalized.encoding, "UTF-16LE");
    }

    #[test]
    fn declared_windows_1252_is_converted() {
        let (text, _) = run(b"id,name\n1,Zo\xEB\n", Encoding::for_label(b"windows-1252")).unwrap();
        assert_eq!(text, "id,name\n1,Zoë\n");
    }

    #[test]
    fn undeclared_latin1_names_the_line_and_byte() {
        let refusal = run(b"id,name\n1,ok\n2,Zo\xEB\n", None).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::InvalidEncoding {
                encoding: "UTF-8",
                line: 3,
                byte_offset: 17
            }
        );
        assert!(refusal.describe("people.csv").contains("people.csv line 3"));
    }

    #[test]
    fn invalid_utf8_across_a_buffer_boundary_is_still_found() {
        let mut input = b"id,note\n".to_vec();
        while input.len() < 256 * 1024 - 1 {
            input.extend_from_slice(b"1,aaaaaaaaaaaaaaaa\n");
        }
        input.truncate(256 * 1024 - 1);
        input.extend_from_slice(b"\xC3\x28\n");
        assert!(matches!(run(&input, None), Err(Refusal::InvalidEncoding { .. })));
    }

    #[test]
    fn binary_formats_are_recognized_by_content() {
        assert_eq!(
            run(b"%PDF-1.7 ...", None).unwrap_err(),
            Refusal::Binary { kind: "a PDF document" }
        );
        assert!(matches!(run(b"PK\x03\x04rest", None), Err(Refusal::Binary { .. })));
        assert!(matches!(
            run(b"id,name\n1,\x00\x00\n", None),
            Err(Refusal::Binary { .. })
        ));
        assert_eq!(run(b"", None).unwrap_err(), Refusal::Empty);
    }

    #[test]
    fn shape_checks_name_the_problem() {
        assert_eq!(check_shape(&b"id,name\n1,a\n"[..]), Ok(2));
        assert_eq!(check_shape(&b"id,name\n"[..]), Err(Refusal::NoDataRows));
        assert_eq!(check_shape(&b"  \n\n"[..]), Err(Refusal::Empty));
        assert_eq!(
            check_shape(&b"id;name\n1;a\n"[..]),
            Err(Refusal::WrongDelimiter { found: ';' })
        );
        assert_eq!(
            check_shape(&b"id,,name\n1,2,3\n"[..]),
            Err(Refusal::InvalidHeader {
                column: 2,
                problem: "is empty"
            })
        );
        assert_eq!(
            check_shape(&b"id,name,id\n1,2,3\n"[..]),
            Err(Refusal::InvalidHeader {
                column: 3,
                problem: "repeats an earlier column name"
            })
        );
        assert_eq!(
            check_shape(&b"Dear team\nplease find, attached, the numbers\n"[..]),
            Err(Refusal::NotTabular { line: 2 })
        );
        assert_eq!(check_shape(&b"id\n1\n2\n"[..]), Ok(1));
        assert_eq!(check_shape(&b"id,note\n1,\"multi\nline\"\n"[..]), Ok(2));
    }
}
