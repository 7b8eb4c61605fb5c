//! From CSV records to DynamoDB items: the header becomes a schema, each record an item or a
//! line-level problem.

use std::collections::BTreeMap;
use std::io::Read;

use sluice_core::config::{ColumnType, DatasetSettings};
use sluice_core::item::{MAX_ITEM_BYTES, item_size};
use sluice_core::quarantine::LineProblem;
use sluice_core::{AttrValue, Item, ItemKey};

use crate::cells::type_cell;

pub use sluice_core::item::DATA_ATTRIBUTE;
/// DynamoDB's sort key size limit in bytes.
const MAX_SORT_KEY_BYTES: usize = 1024;
/// Separates the values of a composite key.
pub const KEY_SEPARATOR: &str = "#";

/// Why a whole file cannot be read as this dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    Missing,
    InvalidUtf8 { column: usize },
    MissingKeyColumn { column: String },
    DuplicateColumn { column: String },
}

impl HeaderProblem {
    pub fn code(&self) -> &'static str {
        match self {
            HeaderProblem::Missing => "empty",
            HeaderProblem::InvalidUtf8 { .. } => "invalid_utf8",
            HeaderProblem::MissingKeyColumn { .. } => "missing_key_column",
            HeaderProblem::DuplicateColumn { .. } => "invalid_header",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            HeaderProblem::Missing => "the file has no header line".into(),
            HeaderProblem::InvalidUtf8 { column } => format!("header column {column} is not valid UTF-8"),
            HeaderProblem::MissingKeyColumn { column } => {
                format!("the header has no key column {column:?} (datasets.<name>.key_columns)")
            }
            HeaderProblem::DuplicateColumn { column } => format!("the header repeats column {column:?}"),
        }
    }
}

/// The columns of one file and how to key and type them.
#[derive(Debug, Clone)]
pub struct Schema {
    pub columns: Vec<String>,
    types: Vec<ColumnType>,
    key_indices: Vec<usize>,
    /// Column indices in name order.
    sorted_columns: Vec<usize>,
}

impl Schema {
    /// Builds the schema from the header record and the dataset's settings: key columns as
    /// configured, else the first column.
    pub fn from_header(header: &csv::ByteRecord, settings: &DatasetSettings) -> Result<Schema, HeaderProblem> {
        if header.is_empty() {
            return Err(HeaderProblem::Missing);
        }
        let mut columns = Vec::with_capacity(header.len());
        for (index, field) in header.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| HeaderProblem::InvalidUtf8 { column: index + 1 })?;
            let name = name.trim_start_matches('\u{feff}').trim().to_string();
            if columns.contains(&name) {
                return Err(HeaderProblem::DuplicateColumn { column: name });
            }
            columns.push(name);
        }
        let key_indices = settings
            .key_columns_in(&columns)
            .map_err(|missing| HeaderProblem::MissingKeyColumn {
                column: missing.to_string(),
            })?
            .into_iter()
            .filter_map(|key| columns.iter().position(|c| c == key))
            .collect();
        let types = columns
            .iter()
            .map(|c| settings.columns.get(c).copied().unwrap_or_default())
            .collect();
        let mut sorted_columns: Vec<usize> = (0..columns.len()).collect();
        sorted_columns.sort_by(|&a, &b| columns[a].cmp(&columns[b]));
        Ok(Schema {
            columns,
            types,
            key_indices,
            sorted_columns,
        })
    }

    /// The item for one record, or the problem that keeps it out. `line` is 1-based.
    pub fn item(&self, dataset: &str, record: &csv::ByteRecord, line: u64) -> Result<(ItemKey, Item), LineProblem> {
        let problem = |column: Option<&str>, reason: String| LineProblem {
            line,
            column: column.map(str::to_string),
            reason,
        };
        if record.len() != self.columns.len() {
            return Err(problem(
                None,
                format!("expected {} fields, found {}", self.columns.len(), record.len()),
            ));
        }
        // Columns in name order, so the map is bulk-built from sorted pairs rather than
        // inserted into one by one.
        let mut cells = Vec::with_capacity(self.columns.len());
        for &index in &self.sorted_columns {
            let typed = std::str::from_utf8(&record[index])
                .ok()
                .and_then(|text| type_cell(text, self.types[index]).ok());
            match typed {
                Some(value) => cells.push((self.columns[index].clone(), value)),
                None => return Err(self.first_cell_problem(record, line)),
            }
        }
        let data: BTreeMap<String, AttrValue> = cells.into_iter().collect();
        let mut key = String::new();
        for (position, &index) in self.key_indices.iter().enumerate() {
            let column = &self.columns[index];
            let part = std::str::from_utf8(&record[index]).unwrap_or_default();
            if part.is_empty() {
                return Err(problem(Some(column), "is a key column and is empty".into()));
            }
            if position > 0 {
                key.push_str(KEY_SEPARATOR);
            }
            key.push_str(part);
        }
        if key.len() > MAX_SORT_KEY_BYTES {
            return Err(problem(
                None,
                format!(
                    "the record key is {} bytes, over DynamoDB's 1024-byte key limit",
                    key.len()
                ),
            ));
        }
        let item_key = ItemKey::new(dataset, key);
        let mut item = item_key.to_item();
        item.insert(DATA_ATTRIBUTE.into(), AttrValue::M(data));
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(problem(
                None,
                format!("the item is {size} bytes, over DynamoDB's 400 KB item limit"),
            ));
        }
        Ok((item_key, item))
    }
}

impl Schema {
    /// The first bad cell of `record` in file order (the slow path, only for bad rows).
    fn first_cell_problem(&self, record: &csv::ByteRecord, line: u64) -> LineProblem {
        for (index, field) in record.iter().enumerate() {
            let column = Some(self.columns[index].clone());
            let reason = match std::str::from_utf8(field) {
                Err(_) => "is not valid UTF-8".to_string(),
                Ok(text) => match type_cell(text, self.types[index]) {
                    Err(problem) => problem.describe().to_string(),
                    Ok(_) => continue,
                },
            };
            return LineProblem { line, column, reason };
        }
        LineProblem {
            line,
            column: None,
            reason: "holds a cell that cannot be typed".into(),
        }
    }
}

/// What reading a file yields, record by record.
pub enum Row {
    Item {
        key: ItemKey,
        item: Item,
    },
    Rejected {
        problem: LineProblem,
        record: csv::ByteRecord,
    },
}

/// A CSV reader that never stops at a bad record: ragged rows and undecodable bytes come out
/// as [`Row::Rejected`] with their line.
pub struct Rows<R: Read> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    schema: Schema,
    dataset: String,
}

impl<R: Read> Rows<R> {
    /// Reads the header of `input` and prepares to read its records.
    pub fn new(input: R, dataset: &str, settings: &DatasetSettings) -> Result<Rows<R>, HeaderProblem> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(input);
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(HeaderProblem::Missing),
        }
        let schema = Schema::from_header(&header, settings)?;
        Ok(Rows {
            reader,
            record: csv::ByteRecord::new(),
            schema,
            dataset: dataset.to_string(),
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(match self.schema.item(&self.dataset, &self.record, line) {
                    Ok((key, item)) => Row::Item { key, item },
                    Err(problem) => Row::Rejected {
                        problem,
                        record: self.record.clone(),
                    },
                })
            }
            Err(err) => {
                let line = err.position().map_or(0, csv::Position::line);
                Some(Row::Rejected {
                    problem: LineProblem {
                        line,
                        column: None,
                        reason: "is not readable CSV".into(),
                    },
                    record: csv::ByteRecord::new(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, settings: &DatasetSettings) -> Vec<Row> {
        Rows::new(text.as_bytes(), "d", settings).unwrap().collect()
    }

    #[test]
    fn first_column_is_the_key_when_none_is_configured() {
        let out = rows("id,name\n0042,Ada\n", &DatasetSettings::default());
        let Row::Item { key, item } = &out[0] else { panic!() };
        assert_eq!(key, &ItemKey::new("d", "0042"));
        let AttrValue::M(data) = &item[DATA_ATTRIBUTE] else {
            panic!()
        };
        assert_eq!(data["id"], AttrValue::S("0042".into()));
    }

    #[test]
    fn composite_keys_join_their_columns() {
        let settings = DatasetSettings {
            key_columns: vec!["region".into(), "id".into()],
            ..DatasetSettings::default()
        };
        let out = rows("id,region\n7,eu\n", &settings);
        let Row::Item { key, .. } = &out[0] else { panic!() };
        assert_eq!(key.sk, "eu#7");
    }

    #[test]
    fn bad_records_are_reported_with_their_line() {
        let text = "id,name\n1,a\n2\n,c\n4,\"multi\nline\"\n5,e,extra\n";
        let problems: Vec<String> = rows(text, &DatasetSettings::default())
            .into_iter()
            .filter_map(|row| match row {
                Row::Rejected { problem, .. } => Some(problem.to_string()),
                Row::Item { .. } => None,
            })
            .collect();
        assert_eq!(
            problems,
            vec![
                "line 3: expected 2 fields, found 1",
                "line 4, column \"id\": is a key column and is empty",
                "line 7: expected 2 fields, found 3",
            ]
        );
    }

    #[test]
    fn a_missing_configured_key_column_is_a_header_problem() {
        let settings = DatasetSettings {
            key_columns: vec!["order_id".into()],
            ..DatasetSettings::default()
        };
        let err = Rows::new(&b"id,name\n1,a\n"[..], "d", &settings).err().unwrap();
        assert_eq!(
            err,
            HeaderProblem::MissingKeyColumn {
                column: "order_id".into()
            }
        );
    }

    #[test]
    fn invalid_utf8_and_oversized_items_are_rejected() {
        let mut text = b"id,name\n1,\xff\xfe\n2,".to_vec();
        text.extend(std::iter::repeat_n(b'x', 410 * 1024));
        text.push(b'\n');
        let problems: Vec<String> = Rows::new(&text[..], "d", &DatasetSettings::default())
            .unwrap()
            .filter_map(|row| match row {
                Row::Rejected { problem, .. } => Some(problem.to_string()),
                Row::Item { .. } => None,
            })
            .collect();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0], "line 2, column \"name\": is not valid UTF-8");
        assert!(problems[1].starts_with("line 3: the item is 4198"), "{}", problems[1]);
    }
}
