//! Detection results carried from the detect step to the mask step, so that a file is scanned
//! once (with Comprehend: half the calls, half the cost). `<name>.pii-findings` beside the staged
//! object holds, for every row, the columns with entities and their types, offsets and scores:
//! never a value. Mask uses them only when they were made from the same bytes, by the same
//! detector settings and policy; otherwise, or where they turn out damaged, it detects again.
//!
//! Findings decide what mask leaves unmasked, so they are signed: an HMAC-SHA256 under the
//! deployment's findings key ([`FINDINGS_KEY_NAME`] in the secrets backend) ends the file, and
//! a file it does not verify is never read. Whoever can write `staged/` cannot thereby keep a
//! value in clear.
//!
//! Layout: [`MAGIC`], a frame holding the [`Stamp`], one frame per CSV row (empty when the row
//! has no entity), then [`END_OF_ROWS`], the row count and the tag. A frame is a little-endian
//! `u32` length and that many bytes of postcard.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sluice_core::ObjectKey;
use xxhash_rust::xxh3::Xxh3;

use crate::entity::PiiEntity;
use crate::error::PiiError;
use crate::policy::PiiPolicy;

const MAGIC: &[u8; 8] = b"SLPIIF\x00\x01";
/// The secrets-backend name of the key that signs findings.
pub(crate) const FINDINGS_KEY_NAME: &str = "pii/findings";
const TAG_BYTES: u64 = 32;

type HmacSha256 = Hmac<Sha256>;

fn mac_of(key: &[u8; 32]) -> HmacSha256 {
    // HMAC takes a key of any length: a 32-byte one cannot be refused.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// A writer that signs every byte it passes on.
struct Signing {
    out: BufWriter<File>,
    mac: HmacSha256,
}

impl Write for Signing {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.mac.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
/// In place of a frame length: the rows are over, their count follows.
const END_OF_ROWS: u32 = u32::MAX;
/// A row frame longer than this is damage, not findings (a 1 MiB cell has far fewer entities).
const MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// The findings key of a staged object: same folder, `<file name>.pii-findings`.
pub fn findings_key(staged: &ObjectKey) -> Result<ObjectKey, PiiError> {
    Ok(staged.with_file_name(&format!("{}.pii-findings", staged.file_name()))?)
}

/// What a set of findings was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    /// xxh3-128 of the staged file's bytes.
    content: u128,
    size: u64,
    /// xxh3-128 of everything else the entities depend on (see [`Stamp::of`]).
    settings: u128,
}

impl Stamp {
    /// The stamp of the staged file at `path`, detected by `detector_fingerprint` under `policy`
    /// in batches of `batch_bytes`. Hashing 100 MB takes about 20 ms.
    pub fn of(path: &Path, detector_fingerprint: &str, policy: &PiiPolicy, batch_bytes: usize) -> io::Result<Stamp> {
        let mut file = File::open(path)?;
        let mut hasher = Xxh3::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        let settings = format!(
            "{} {detector_fingerprint} {batch_bytes} {policy:?}",
            env!("CARGO_PKG_VERSION")
        );
        Ok(Stamp {
            content: hasher.digest128(),
            size,
            settings: xxhash_rust::xxh3::xxh3_128(settings.as_bytes()),
        })
    }
}

/// The entities of one row that has some: (column, entities), columns ascending.
type RowFindings = Vec<(u32, Vec<PiiEntity>)>;

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(io::Error::other)
}

/// Writes the findings of a file, row by row, into a temporary file.
pub(crate) struct FindingsWriter {
    file: tempfile::NamedTempFile,
    out: Signing,
    rows: u64,
}

impl FindingsWriter {
    /// Findings made under `stamp`, signed with `key`.
    pub fn new(stamp: &Stamp, key: &[u8; 32]) -> io::Result<FindingsWriter> {
        let file = tempfile::NamedTempFile::new()?;
        let mut out = Signing {
            out: BufWriter::with_capacity(256 * 1024, file.reopen()?),
            mac: mac_of(key),
        };
        out.write_all(MAGIC)?;
        write_frame(&mut out, &encode(stamp)?)?;
        Ok(FindingsWriter { file, out, rows: 0 })
    }

    /// The findings of `grid` (`[row][column]`, as the detection gave them).
    pub fn push_rows(&mut self, grid: &[Vec<Vec<PiiEntity>>]) -> io::Result<()> {
        for row in grid {
            let found: RowFindings = row
                .iter()
                .enumerate()
                .filter(|(_, entities)| !entities.is_empty())
                .map(|(column, entities)| (column as u32, entities.clone()))
                .collect();
            if found.is_empty() {
                write_frame(&mut self.out, &[])?;
            } else {
                write_frame(&mut self.out, &encode(&found)?)?;
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// The complete findings file.
    pub fn finish(mut self) -> io::Result<tempfile::NamedTempFile> {
        self.out.write_all(&END_OF_ROWS.to_le_bytes())?;
        self.out.write_all(&self.rows.to_le_bytes())?;
        let Signing { mut out, mac } = self.out;
        out.write_all(&mac.finalize().into_bytes())?;
        out.flush()?;
        Ok(self.file)
    }
}

fn write_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|length| *length <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::other("a row's findings exceed the frame limit"))?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(payload)
}

/// Why carried findings cannot be used: the mask step says so and detects again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unusable {
    #[error("they were made from other bytes or settings")]
    Stale,
    #[error("they are not signed by this deployment's findings key")]
    Unsigned,
    #[error("they are damaged: {0}")]
    Damaged(&'static str),
}

/// Checks the tag at the end of `file` against everything before it, before a row is read.
fn verify(file: &mut File, key: &[u8; 32]) -> Result<(), Unusable> {
    let unreadable = |_| Unusable::Damaged("unreadable");
    let length = file.metadata().map_err(unreadable)?.len();
    let signed = length
        .checked_sub(TAG_BYTES)
        .filter(|signed| *signed >= MAGIC.len() as u64)
        .ok_or(Unusable::Damaged("cut short"))?;
    file.rewind().map_err(unreadable)?;
    let mut mac = mac_of(key);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut left = signed;
    while left > 0 {
        let chunk = buffer.len().min(left as usize);
        file.read_exact(&mut buffer[..chunk]).map_err(unreadable)?;
        mac.update(&buffer[..chunk]);
        left -= chunk as u64;
    }
    let mut tag = [0u8; TAG_BYTES as usize];
    file.read_exact(&mut tag).map_err(unreadable)?;
    mac.verify_slice(&tag).map_err(|_| Unusable::Unsigned)
}

/// Reads the findings of a file, row by row, checking each against the row it describes.
pub(crate) struct FindingsReader {
    input: BufReader<File>,
    rows: u64,
    frame: Vec<u8>,
}

impl FindingsReader {
    /// The findings in `file` if `key` signed them and they were made under `expected`.
    pub fn open(mut file: File, expected: &Stamp, key: &[u8; 32]) -> Result<FindingsReader, Unusable> {
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic)
            .map_err(|_| Unusable::Damaged("shorter than its header"))?;
        if &magic != MAGIC {
            return Err(Unusable::Damaged("not a findings file of this version"));
        }
        verify(&mut file, key)?;
        let mut input = BufReader::with_capacity(256 * 1024, file);
        input
            .seek(io::SeekFrom::Start(MAGIC.len() as u64))
            .map_err(|_| Unusable::Damaged("unreadable"))?;
        let mut reader = FindingsReader {
            input,
            rows: 0,
            frame: Vec::new(),
        };
        if !reader.next_frame()? {
            return Err(Unusable::Damaged("no stamp"));
        }
        let stamp: Stamp = postcard::from_bytes(&reader.frame).map_err(|_| Unusable::Damaged("unreadable stamp"))?;
        if stamp != *expected {
            return Err(Unusable::Stale);
        }
        Ok(reader)
    }

    /// Reads the next frame into `self.frame`; `false` at the end of the rows.
    fn next_frame(&mut self) -> Result<bool, Unusable> {
        let mut length = [0u8; 4];
        self.input
            .read_exact(&mut length)
            .map_err(|_| Unusable::Damaged("cut short"))?;
        let length = u32::from_le_bytes(length);
        if length == END_OF_ROWS {
            return Ok(false);
        }
        if length > MAX_FRAME_BYTES {
            return Err(Unusable::Damaged("a frame longer than the limit"));
        }
        self.frame.resize(length as usize, 0);
        self.input
            .read_exact(&mut self.frame)
            .map_err(|_| Unusable::Damaged("cut short"))?;
        Ok(true)
    }

    /// The entities of `rows` (`[row][column]`, each row as wide as itself or the header,
    /// whichever is wider), as the detection would give them.
    pub fn next_rows(
        &mut self,
        rows: &[csv::StringRecord],
        header_len: usize,
    ) -> Result<Vec<Vec<Vec<PiiEntity>>>, Unusable> {
        let mut grid = Vec::with_capacity(rows.len());
        for row in rows {
            if !self.next_frame()? {
                return Err(Unusable::Damaged("fewer rows than the file"));
            }
            self.rows += 1;
            let mut per_column = vec![Vec::new(); row.len().max(header_len)];
            if !self.frame.is_empty() {
                let found: RowFindings =
                    postcard::from_bytes(&self.frame).map_err(|_| Unusable::Damaged("an unreadable row"))?;
                for (column, entities) in found {
                    let text = row.get(column as usize).unwrap_or("");
                    let slot = per_column
                        .get_mut(column as usize)
                        .ok_or(Unusable::Damaged("an entity in a column the row does not have"))?;
                    let chars = text.chars().count();
                    if entities.iter().any(|e| e.begin > e.end || e.end > chars) {
                        return Err(Unusable::Damaged("an entity outside its cell"));
                    }
                    *slot = entities;
                }
            }
            grid.push(per_column);
        }
        Ok(grid)
    }

    /// Checks that the findings end where the file did.
    pub fn finish(mut self) -> Result<(), Unusable> {
        if self.next_frame()? {
            return Err(Unusable::Damaged("more rows than the file"));
        }
        let mut count = [0u8; 8];
        self.input
            .read_exact(&mut count)
            .map_err(|_| Unusable::Damaged("cut short"))?;
        if u64::from_le_bytes(count) != self.rows {
            return Err(Unusable::Damaged("a row count that does not match"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::EntityType;

    const KEY: [u8; 32] = [7; 32];

    fn stamp() -> Stamp {
        Stamp {
            content: 7,
            size: 3,
            settings: 9,
        }
    }

    fn rows() -> Vec<csv::StringRecord> {
        vec![
            csv::StringRecord::from(vec!["1", "zoë@example.test"]),
            csv::StringRecord::from(vec!["2", "nothing here"]),
            csv::StringRecord::from(vec!["3", "x", "extra 555-0100"]),
        ]
    }

    fn grid() -> Vec<Vec<Vec<PiiEntity>>> {
        vec![
            vec![vec![], vec![PiiEntity::new(EntityType::Email, 0, 16, 0.9)]],
            vec![vec![], vec![]],
            vec![vec![], vec![], vec![PiiEntity::new(EntityType::Phone, 6, 14, 0.6)]],
        ]
    }

    fn written(grid: &[Vec<Vec<PiiEntity>>]) -> Vec<u8> {
        let mut writer = FindingsWriter::new(&stamp(), &KEY).unwrap();
        writer.push_rows(grid).unwrap();
        std::fs::read(writer.finish().unwrap().path()).unwrap()
    }

    fn reader_of(bytes: &[u8]) -> Result<FindingsReader, Unusable> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        FindingsReader::open(file, &stamp(), &KEY)
    }

    #[test]
    fn findings_read_back_as_the_detection_gave_them() {
        let bytes = written(&grid());
        let mut reader = reader_of(&bytes).unwrap();
        let rows = rows();
        let mut back = reader.next_rows(&rows[..2], 2).unwrap();
        back.extend(reader.next_rows(&rows[2..], 2).unwrap());
        assert_eq!(back, grid());
        reader.finish().unwrap();
    }

    #[test]
    fn findings_of_other_bytes_or_settings_are_stale() {
        let bytes = written(&grid());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let other = Stamp { content: 8, ..stamp() };
        assert_eq!(FindingsReader::open(file, &other, &KEY).err(), Some(Unusable::Stale));
    }

    #[test]
    fn findings_not_signed_by_the_key_are_never_read() {
        let bytes = written(&grid());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        file.rewind().unwrap();
        assert_eq!(
            FindingsReader::open(file, &stamp(), &[8; 32]).err(),
            Some(Unusable::Unsigned)
        );
        // One row's entities dropped (the second frame made empty), the stamp left as it was.
        let mut writer = FindingsWriter::new(&stamp(), &KEY).unwrap();
        let mut edited = grid();
        edited[0][1].clear();
        writer.push_rows(&edited).unwrap();
        let edited = std::fs::read(writer.finish().unwrap().path()).unwrap();
        let mut forged = edited[..edited.len() - 32].to_vec();
        forged.extend_from_slice(&bytes[bytes.len() - 32..]);
        assert_eq!(reader_of(&forged).err(), Some(Unusable::Unsigned));
    }

    #[test]
    fn damaged_findings_are_refused_never_trusted() {
        let bytes = written(&grid());
        // Cut anywhere: refused at open, at a row or at the end.
        for cut in 0..bytes.len() {
            let outcome = reader_of(&bytes[..cut]).and_then(|mut reader| {
                reader.next_rows(&rows(), 2)?;
                reader.finish()
            });
            assert!(outcome.is_err(), "cut at {cut} of {}", bytes.len());
        }
        // Findings for a longer file, or one whose cells are shorter.
        let mut reader = reader_of(&bytes).unwrap();
        reader.next_rows(&rows()[..2], 2).unwrap();
        assert_eq!(
            reader.finish().err(),
            Some(Unusable::Damaged("more rows than the file"))
        );
        let mut reader = reader_of(&bytes).unwrap();
        let shorter = vec![csv::StringRecord::from(vec!["1", "short"])];
        assert_eq!(
            reader.next_rows(&shorter, 2).err(),
            Some(Unusable::Damaged("an entity outside its cell"))
        );
        assert_eq!(
            reader_of(b"not findings at all").err(),
            Some(Unusable::Damaged("not a findings file of this version"))
        );
    }
}
