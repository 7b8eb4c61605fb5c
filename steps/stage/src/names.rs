//! Object keys from untrusted attachment names and source ids.

use sha2::{Digest, Sha256};

const MAX_NAME_CHARS: usize = 100;

/// A file name safe inside an object key: the last path component only, no control or
/// separator characters, no leading dots, at most 100 characters; `attachment` when nothing
/// usable is left. Letters of every script are kept.
pub fn safe_file_name(untrusted: &str) -> String {
    let last = untrusted.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(
                    c,
                    ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '%' | '{' | '}' | '^' | '~' | '[' | ']' | '`'
                )
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let limited = shorten_keeping_extension(trimmed, MAX_NAME_CHARS);
    if limited.is_empty() || limited.chars().all(|c| c == '_') {
        "attachment".to_string()
    } else {
        limited
    }
}

/// `name` cut to `max` characters, its extension (`.csv`, up to 16 characters) kept: the stem
/// gives way, not the type.
fn shorten_keeping_extension(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.chars().count() <= 16)
        .map(|ext| format!(".{ext}"))
        .unwrap_or_default();
    let stem_room = max.saturating_sub(extension.chars().count());
    let stem: String = name.chars().take(stem_room).collect();
    format!("{}{extension}", stem.trim_end_matches('.'))
}

/// The id of one attachment: derived from its content hash and where it came from, so the same
/// attachment staged twice lands on the same keys, and the same bytes from two messages do not
/// overwrite each other's provenance.
pub fn attachment_id(content_sha256: &str, message_id: &str, part_id: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [content_sha256, message_id, part_id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The file name with its extension replaced by `.csv` (staged files are always CSV).
pub fn csv_name(file_name: &str) -> String {
    let stem = match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file_name,
    };
    format!("{stem}.csv")
}

/// Metadata values travel as HTTP headers on S3: keep printable ASCII, percent-encode the rest.
pub fn metadata_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The dataset an attachment lands in: its file name's stem (`Orders 2026.csv` -> `orders-2026`),
/// or `fallback` when nothing usable is left.
pub fn dataset_for_file(file_name: &str, fallback: &str) -> String {
    let name = safe_file_name(file_name);
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem);
    let dataset: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let dataset = dataset.trim_matches('-').to_string();
    if sluice_core::dataset::DatasetName::is_valid(&dataset) {
        dataset
    } else {
        fallback.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_control_characters_never_reach_a_key() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("..\\..\\windows\\system.ini"), "system.ini");
        assert_eq!(safe_file_name("report\r\n.csv"), "report__.csv");
        assert_eq!(safe_file_name("..."), "attachment");
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name("/"), "attachment");
        assert_eq!(safe_file_name(".hidden.csv"), "hidden.csv");
        assert_eq!(safe_file_name("données été.csv"), "données été.csv");
        assert_eq!(safe_file_name(&"a".repeat(500)).chars().count(), 100);
        assert!(sluice_core::ObjectKey::new(format!("raw/x/{}", safe_file_name("a\u{0}b/../c\u{7f}"))).is_ok());
    }

    #[test]
    fn attachment_ids_depend_on_content_and_source() {
        let a = attachment_id("hash", "msg-1", "1");
        assert_eq!(a, attachment_id("hash", "msg-1", "1"));
        assert_ne!(a, attachment_id("hash", "msg-2", "1"));
        assert_ne!(a, attachment_id("other", "msg-1", "1"));
        // Length-prefixing keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(attachment_id("h", "ab", "c"), attachment_id("h", "a", "bc"));
    }

    #[test]
    fn staged_names_end_in_csv() {
        assert_eq!(csv_name("orders.txt"), "orders.csv");
        assert_eq!(csv_name("orders"), "orders.csv");
        assert_eq!(csv_name("orders.csv"), "orders.csv");
    }

    #[test]
    fn metadata_values_are_header_safe() {
        assert_eq!(metadata_value("<abc@example.test>"), "<abc@example.test>");
        assert_eq!(metadata_value("é\n%"), "%C3%A9%0A%25");
    }

    #[test]
    fn datasets_are_named_after_files() {
        assert_eq!(dataset_for_file("orders.csv", "inbox"), "orders");
        assert_eq!(dataset_for_file("Orders 2026.CSV", "inbox"), "orders-2026");
        assert_eq!(dataset_for_file("../../x/données.csv", "inbox"), "donn-es");
        assert_eq!(dataset_for_file("é.csv", "inbox"), "inbox");
    }

    #[test]
    fn a_long_name_is_shortened_keeping_its_extension() {
        let long = format!("{}.csv", "q".repeat(300));
        let short = safe_file_name(&long);
        assert!(short.ends_with(".csv"), "{short}");
        assert_eq!(short.chars().count(), MAX_NAME_CHARS);
        assert_eq!(dataset_for_file(&long, "inbox").len(), 64);
        let no_ext = safe_file_name(&"z".repeat(300));
        assert_eq!(no_ext.chars().count(), MAX_NAME_CHARS);
    }
}
