//! `ItemReader`: a Distributed Map's items, read from S3 one at a time (an object is fetched
//! whole, but its items become JSON values only as the map asks for them).
//!
//! What AWS does, and so what this does: a JSON object must hold an array; a JSONL object
//! holds one value per line; CSV values are all strings, a short row is padded with empty
//! strings and a long one loses its extra fields; a MANIFEST is an S3 Inventory manifest whose
//! CSV files (gzipped or not) are read in turn; `listObjectsV2` yields each object's metadata.
//! Every failure is `States.ItemReaderFailed`, with a cause naming the object and line.

use crate::errors::{StateFailure, names};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len};
use crate::model::map::{CsvHeaderLocation, InputType, ItemReader, MAX_CSV_HEADER_BYTES, ReaderAction, ReaderConfig};
use crate::objects::{ObjectError, ObjectStorage, ObjectSummary};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::io::Read;

pub(crate) fn reader_failed(cause: impl Into<String>) -> StateFailure {
    StateFailure::new(names::ITEM_READER_FAILED, cause)
}

fn object_failed(e: ObjectError) -> StateFailure {
    reader_failed(e.to_string())
}

/// Where the reader's object lives, as `Parameters` (or `Arguments`) named it.
#[derive(Debug, Clone)]
pub(crate) struct ObjectLocation {
    pub bucket: String,
    pub key: String,
}

impl ObjectLocation {
    fn shown(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

fn string_parameter(parameters: &Value, field: &str, required: bool) -> Result<Option<String>, StateFailure> {
    match parameters.get(field) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(reader_failed(format!("the ItemReader's Parameters have no {field}"))),
        Some(other) => Err(reader_failed(format!(
            "the ItemReader's {field} must be a string, not {}",
            crate::json::to_compact(other)
        ))),
    }
}

/// A CSV object being read row by row.
struct CsvRows {
    rows: csv::Reader<std::io::Cursor<Vec<u8>>>,
    headers: Vec<String>,
    origin: String,
    record: csv::StringRecord,
}

impl CsvRows {
    fn open(body: Vec<u8>, origin: String, delimiter: u8, given: Option<&[String]>) -> Result<Self, StateFailure> {
        let mut rows = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(std::io::Cursor::new(body));
        let headers = match given {
            Some(headers) => headers.to_vec(),
            None => {
                let mut first = csv::StringRecord::new();
                let read = rows.read_record(&mut first).map_err(|e| csv_failed(&origin, e))?;
                if !read {
                    return Err(reader_failed(format!("{origin} has no header row")));
                }
                first.iter().map(str::to_string).collect()
            }
        };
        check_headers(&headers)?;
        Ok(Self {
            rows,
            headers,
            origin,
            record: csv::StringRecord::new(),
        })
    }

    fn next(&mut self) -> Result<Option<Value>, StateFailure> {
        let read = self
            .rows
            .read_record(&mut self.record)
            .map_err(|e| csv_failed(&self.origin, e))?;
        if !read {
            return Ok(None);
        }
        let mut item = Map::with_capacity(self.headers.len());
        for (i, header) in self.headers.iter().enumerate() {
            let value = self.record.get(i).unwrap_or("");
            item.insert(header.clone(), Value::String(value.to_string()));
        }
        Ok(Some(Value::Object(item)))
    }
}

fn check_headers(headers: &[String]) -> Result<(), StateFailure> {
    let total: usize = headers.iter().map(|h| h.len() + 1).sum();
    if total > MAX_CSV_HEADER_BYTES {
        return Err(reader_failed(format!(
            "the CSV header row is {total} bytes; Step Functions reads headers of up to {MAX_CSV_HEADER_BYTES} bytes"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if headers.iter().any(|h| !seen.insert(h.as_str())) {
        return Err(reader_failed("CSV headers cannot contain duplicates."));
    }
    Ok(())
}

fn csv_failed(origin: &str, e: csv::Error) -> StateFailure {
    let line = e.position().map(|p| p.line());
    let what = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_string(),
        _ => format!("cannot be read as CSV: {e}"),
    };
    match line {
        Some(line) => reader_failed(format!("line {line} of {origin} {what}")),
        None => reader_failed(format!("{origin} {what}")),
    }
}

/// An S3 Inventory manifest: its CSV files, read in turn.
struct InventoryFiles {
    bucket: String,
    files: VecDeque<String>,
    schema: Vec<String>,
    current: Option<CsvRows>,
    manifest: String,
}

/// Gzipped inventory files are inflated whole (they are at most a few hundred MB on AWS).
fn inflate_if_gzipped(body: Vec<u8>, origin: &str) -> Result<Vec<u8>, StateFailure> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| reader_failed(format!("{origin} is not a readable gzip file: {e}")))?;
        Ok(out)
    } else {
        Ok(body)
    }
}

impl InventoryFiles {
    fn parse(body: &[u8], location: &ObjectLocation) -> Result<Self, StateFailure> {
        let origin = location.shown();
        let manifest: Value = serde_json::from_slice(body).map_err(|e| {
            reader_failed(format!(
                "the manifest {origin} is not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let field = |name: &str| {
            manifest
                .get(name)
                .ok_or_else(|| reader_failed(format!("the manifest {origin} has no '{name}'")))
        };
        let format = field("fileFormat")?.as_str().unwrap_or_default();
        if !format.eq_ignore_ascii_case("CSV") {
            return Err(reader_failed(format!(
                "the manifest {origin} lists {format} files; Step Functions reads CSV inventory files"
            )));
        }
        let destination = field("destinationBucket")?
            .as_str()
            .ok_or_else(|| reader_failed(format!("the manifest {origin}: destinationBucket must be a string")))?;
        let bucket = destination
            .strip_prefix("arn:aws:s3:::")
            .unwrap_or(destination)
            .to_string();
        let schema: Vec<String> = field("fileSchema")?
            .as_str()
            .ok_or_else(|| reader_failed(format!("the manifest {origin}: fileSchema must be a string")))?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let files = field("files")?
            .as_array()
            .ok_or_else(|| reader_failed(format!("the manifest {origin}: files must be an array")))?
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.get("key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| reader_failed(format!("the manifest {origin}: files[{i}] has no key")))
            })
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(Self {
            bucket,
            files,
            schema,
            current: None,
            manifest: origin,
        })
    }

    async fn next(&mut self, objects: &dyn ObjectStorage) -> Result<Option<Value>, StateFailure> {
        loop {
            if let Some(rows) = &mut self.current {
                if let Some(item) = rows.next()? {
                    return Ok(Some(item));
                }
                self.current = None;
            }
            let Some(key) = self.files.pop_front() else {
                return Ok(None);
            };
            let origin = format!("s3://{}/{key}", self.bucket);
            let body = objects.get_object(&self.bucket, &key).await.map_err(|e| {
                reader_failed(format!(
                    "the manifest {} lists {origin}, which cannot be read: {e}",
                    self.manifest
                ))
            })?;
            let body = inflate_if_gzipped(body, &origin)?;
            self.current = Some(CsvRows::open(body, origin, b',', Some(&self.schema))?);
        }
    }
}

/// `listObjectsV2`, a page at a time.
struct Listing {
    bucket: String,
    prefix: String,
    page: VecDeque<ObjectSummary>,
    after: Option<String>,
    exhausted: bool,
}

impl Listing {
    async fn next(&mut self, objects: &dyn ObjectStorage) -> Result<Option<Value>, StateFailure> {
        while self.page.is_empty() {
            if self.exhausted {
                return Ok(None);
            }
            let page = objects
                .list_objects(&self.bucket, &self.prefix, self.after.as_deref())
                .await
                .map_err(object_failed)?;
            self.exhausted = page.next.is_none();
            self.after = page.next;
            self.page = page.objects.into();
        }
        Ok(self.page.pop_front().map(|o| {
            json!({
                "Etag": o.etag,
                "Key": o.key,
                "LastModified": o.last_modified.timestamp(),
                "Size": o.size,
                "StorageClass": o.storage_class,
            })
        }))
    }
}

enum Source {
    Array(std::vec::IntoIter<Value>),
    Lines { body: Vec<u8>, at: usize, line: usize },
    Csv(CsvRows),
    Inventory(Box<InventoryFiles>),
    Listing(Listing),
}

/// The items of one `ItemReader`, in order.
pub(crate) struct ItemStream {
    source: Source,
    origin: String,
    /// Items handed out so far.
    pub read: u64,
    /// `MaxItems`: no item past this many.
    limit: u64,
}

impl ItemStream {
    /// Fetches the object (or the first page of the listing) that `parameters` name.
    pub async fn open(
        objects: &dyn ObjectStorage,
        reader: &ItemReader,
        parameters: &Value,
    ) -> Result<Self, StateFailure> {
        let config: &ReaderConfig = &reader.reader_config;
        let bucket = string_parameter(parameters, "Bucket", true)?.unwrap_or_default();
        let action = reader
            .action()
            .ok_or_else(|| reader_failed(format!("'{}' is not an ItemReader resource", reader.resource)))?;
        if action == ReaderAction::ListObjectsV2 {
            let prefix = string_parameter(parameters, "Prefix", false)?.unwrap_or_default();
            return Ok(Self {
                origin: format!("s3://{bucket}/{prefix}"),
                source: Source::Listing(Listing {
                    bucket,
                    prefix,
                    page: VecDeque::new(),
                    after: None,
                    exhausted: false,
                }),
                read: 0,
                limit: u64::MAX,
            });
        }
        let key = string_parameter(parameters, "Key", true)?.unwrap_or_default();
        let location = ObjectLocation { bucket, key };
        let origin = location.shown();
        let body = objects
            .get_object(&location.bucket, &location.key)
            .await
            .map_err(object_failed)?;
        let source = match config.input_type.unwrap_or(InputType::Json) {
            InputType::Json => {
                let value: Value = serde_json::from_slice(&body).map_err(|e| {
                    reader_failed(format!(
                        "{origin} is not valid JSON (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    ))
                })?;
                match value {
                    Value::Array(items) => Source::Array(items.into_iter()),
                    _ => return Err(reader_failed("Attempting to map over non-iterable node.")),
                }
            }
            InputType::Jsonl => Source::Lines { body, at: 0, line: 0 },
            InputType::Csv => {
                let given = match config.csv_header_location {
                    CsvHeaderLocation::Given => Some(config.csv_headers.as_deref().unwrap_or_default()),
                    CsvHeaderLocation::FirstRow => None,
                };
                Source::Csv(CsvRows::open(body, origin.clone(), config.csv_delimiter.byte(), given)?)
            }
            InputType::Manifest => Source::Inventory(Box::new(InventoryFiles::parse(&body, &location)?)),
        };
        Ok(Self {
            source,
            origin,
            read: 0,
            limit: u64::MAX,
        })
    }

    /// Stops after `limit` items (`ReaderConfig.MaxItems`).
    pub fn limited(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// The next item, or `None` at the end.
    pub async fn next(&mut self, objects: &dyn ObjectStorage) -> Result<Option<Value>, StateFailure> {
        if self.read >= self.limit {
            return Ok(None);
        }
        let item = match &mut self.source {
            Source::Array(items) => items.next(),
            Source::Lines { body, at, line } => next_line(body, at, line, &self.origin)?,
            Source::Csv(rows) => rows.next()?,
            Source::Inventory(files) => files.next(objects).await?,
            Source::Listing(listing) => listing.next(objects).await?,
        };
        if let Some(item) = &item {
            self.read += 1;
            let size = serialized_len(item);
            if size > PAYLOAD_LIMIT_BYTES {
                return Err(reader_failed(format!(
                    "item {} of {} is {size} bytes; an item can be at most {PAYLOAD_LIMIT_BYTES} bytes",
                    self.read, self.origin
                )));
            }
        }
        Ok(item)
    }
}

fn next_line(body: &[u8], at: &mut usize, line: &mut usize, origin: &str) -> Result<Option<Value>, StateFailure> {
    while *at < body.len() {
        let rest = &body[*at..];
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let text = &rest[..end];
        *at += (end + 1).min(rest.len());
        *line += 1;
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if text.len() > PAYLOAD_LIMIT_BYTES {
            return Err(reader_failed(format!(
                "line {line} of {origin} is {} bytes; an item can be at most {PAYLOAD_LIMIT_BYTES} bytes",
                text.len()
            )));
        }
        return serde_json::from_slice(text).map(Some).map_err(|e| {
            reader_failed(format!(
                "line {line} of {origin} is not a JSON value (column {}): {e}",
                e.column()
            ))
        });
    }
    Ok(None)
}
