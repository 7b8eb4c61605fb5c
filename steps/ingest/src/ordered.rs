//! Batches in key order, for a backend that writes them far faster that way (the embedded
//! SQLite: each commit rewrites every page it touched, so a million records in random key
//! order took 34 s against 3 s in order).
//!
//! Batches pass straight through while their keys ascend, as a file keyed by a running number
//! does. From the first batch that does not, the rest of the file is gathered into sorted runs,
//! spilled to anonymous temporary files past a bound, and handed on merged at the end, each
//! key's rows in file order (a later row still replaces an earlier one).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use sluice_core::item::{PARTITION_KEY, SORT_KEY};
use sluice_core::tables::MAX_BATCH_WRITE;
use sluice_core::{AttrValue, Item, ItemKey};

/// Encoded bytes held in memory before a run is sorted and spilled.
const RUN_BYTES: usize = 4 * 1024 * 1024;

/// A gathered row: its key, its place in the file and the item in postcard's form.
struct Gathered {
    key: ItemKey,
    order: u64,
    encoded: Vec<u8>,
}

pub(crate) struct KeyOrdered {
    /// Encoded bytes held before a run is spilled.
    spill_past: usize,
    /// The largest key handed on so far, while batches still pass through.
    last: Option<ItemKey>,
    gathering: bool,
    run: Vec<Gathered>,
    run_bytes: usize,
    spilled: Vec<BufWriter<File>>,
    gathered: u64,
}

impl Default for KeyOrdered {
    fn default() -> Self {
        KeyOrdered::spilling_past(RUN_BYTES)
    }
}

impl KeyOrdered {
    fn spilling_past(spill_past: usize) -> Self {
        KeyOrdered {
            spill_past,
            last: None,
            gathering: false,
            run: Vec::new(),
            run_bytes: 0,
            spilled: Vec::new(),
            gathered: 0,
        }
    }

    /// Hands `batch` to `send` when its keys follow every key handed on before; otherwise keeps
    /// it (and every later batch) for [`KeyOrdered::finish`]. False when `send` was refused.
    pub fn push(&mut self, batch: Vec<Item>, send: &mut impl FnMut(Vec<Item>) -> bool) -> std::io::Result<bool> {
        if !self.gathering {
            let keys: Vec<(&str, &str)> = batch.iter().filter_map(borrowed_key).collect();
            let follows = keys.len() == batch.len()
                && keys.iter().min().is_none_or(|&first| {
                    self.last
                        .as_ref()
                        .is_none_or(|last| first > (last.pk.as_str(), last.sk.as_str()))
                });
            if follows {
                if let Some(&(pk, sk)) = keys.iter().max() {
                    self.last = Some(ItemKey::new(pk, sk));
                }
                return Ok(send(batch));
            }
            self.gathering = true;
            self.last = None;
        }
        for item in batch {
            self.gather(item)?;
        }
        Ok(true)
    }

    fn gather(&mut self, item: Item) -> std::io::Result<()> {
        let key = ItemKey::of(&item).unwrap_or_else(|| ItemKey::new("", ""));
        let encoded = postcard::to_stdvec(&item).map_err(std::io::Error::other)?;
        self.run_bytes += encoded.len() + key.pk.len() + key.sk.len();
        self.run.push(Gathered {
            key,
            order: self.gathered,
            encoded,
        });
        self.gathered += 1;
        if self.run_bytes > self.spill_past {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        sort(&mut self.run);
        let mut file = BufWriter::new(tempfile::tempfile()?);
        for row in self.run.drain(..) {
            write_row(&mut file, &row)?;
        }
        self.spilled.push(file);
        self.run_bytes = 0;
        Ok(())
    }

    /// Hands on everything gathered, in key order, in batches of DynamoDB's size (the writer
    /// merges them up to the backend's own). False when `send` was refused.
    pub fn finish(mut self, send: &mut impl FnMut(Vec<Item>) -> bool) -> std::io::Result<bool> {
        sort(&mut self.run);
        let mut sources: Vec<Source> = Vec::with_capacity(self.spilled.len() + 1);
        for file in self.spilled.drain(..) {
            let mut file = file.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            file.seek(SeekFrom::Start(0))?;
            sources.push(Source::Spilled(BufReader::with_capacity(32 * 1024, file)));
        }
        sources.push(Source::Memory(std::mem::take(&mut self.run).into_iter()));
        // Each source's next row, smallest key first; a tie goes to the row earlier in the file.
        let mut heads = BinaryHeap::new();
        for (index, source) in sources.iter_mut().enumerate() {
            if let Some(row) = source.next_row()? {
                heads.push(Reverse(Head { row, source: index }));
            }
        }
        let mut batch = Vec::with_capacity(MAX_BATCH_WRITE);
        while let Some(Reverse(Head { row, source })) = heads.pop() {
            if let Some(next) = sources[source].next_row()? {
                heads.push(Reverse(Head { row: next, source }));
            }
            let item: Item = postcard::from_bytes(&row.encoded)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
            batch.push(item);
            if batch.len() == MAX_BATCH_WRITE
                && !send(std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH_WRITE)))
            {
                return Ok(false);
            }
        }
        Ok(batch.is_empty() || send(batch))
    }
}

/// An item's key, borrowed: this runs for every row of a file in order.
fn borrowed_key(item: &Item) -> Option<(&str, &str)> {
    match (item.get(PARTITION_KEY), item.get(SORT_KEY)) {
        (Some(AttrValue::S(pk)), Some(AttrValue::S(sk))) => Some((pk, sk)),
        _ => None,
    }
}

fn sort(run: &mut [Gathered]) {
    run.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(a.order.cmp(&b.order)));
}

struct Head {
    row: Gathered,
    source: usize,
}

impl Head {
    fn rank(&self) -> (&ItemKey, u64) {
        (&self.row.key, self.row.order)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

enum Source {
    Spilled(BufReader<File>),
    Memory(std::vec::IntoIter<Gathered>),
}

impl Source {
    fn next_row(&mut self) -> std::io::Result<Option<Gathered>> {
        match self {
            Source::Memory(rows) => Ok(rows.next()),
            Source::Spilled(file) => read_row(file),
        }
    }
}

fn write_row(out: &mut impl Write, row: &Gathered) -> std::io::Result<()> {
    for part in [row.key.pk.as_bytes(), row.key.sk.as_bytes(), &row.encoded] {
        let len = u32::try_from(part.len()).map_err(std::io::Error::other)?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(part)?;
    }
    out.write_all(&row.order.to_le_bytes())
}

/// The next spilled row; None at the end of the file, an error when it is cut short.
fn read_row(input: &mut impl Read) -> std::io::Result<Option<Gathered>> {
    let mut len = [0u8; 4];
    // The end of the file only where a row would begin; anywhere else the row is cut short.
    loop {
        match input.read(&mut len[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    input.read_exact(&mut len[1..])?;
    let pk = text(read_part(input, len)?)?;
    let len = read_len(input)?;
    let sk = text(read_part(input, len)?)?;
    let len = read_len(input)?;
    let encoded = read_part(input, len)?;
    let mut order = [0u8; 8];
    input.read_exact(&mut order)?;
    Ok(Some(Gathered {
        key: ItemKey::new(pk, sk),
        order: u64::from_le_bytes(order),
        encoded,
    }))
}

fn read_len(input: &mut impl Read) -> std::io::Result<[u8; 4]> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    Ok(len)
}

fn read_part(input: &mut impl Read, len: [u8; 4]) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn text(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sk: &str, value: u64) -> Item {
        let mut item = ItemKey::new("d", sk).to_item();
        item.insert("v".into(), AttrValue::N(value.to_string()));
        item
    }

    fn batches(items: Vec<Item>) -> Vec<Vec<Item>> {
        items.chunks(MAX_BATCH_WRITE).map(<[Item]>::to_vec).collect()
    }

    fn run(ordered: &mut KeyOrdered, input: Vec<Vec<Item>>) -> Vec<Vec<Item>> {
        let mut out = Vec::new();
        for batch in input {
            assert!(
                ordered
                    .push(batch, &mut |b| {
                        out.push(b);
                        true
                    })
                    .unwrap()
            );
        }
        out
    }

    fn finish(ordered: KeyOrdered, out: &mut Vec<Vec<Item>>) {
        assert!(
            ordered
                .finish(&mut |b| {
                    out.push(b);
                    true
                })
                .unwrap()
        );
    }

    /// A file whose keys ascend goes straight through, batch by batch, nothing held back.
    #[test]
    fn ascending_batches_pass_straight_through() {
        let items: Vec<Item> = (0..100).map(|n| item(&format!("{n:04}"), n)).collect();
        let mut ordered = KeyOrdered::default();
        let mut out = run(&mut ordered, batches(items.clone()));
        assert_eq!(out.len(), 4, "handed on as they came");
        finish(ordered, &mut out);
        assert_eq!(out.concat(), items);
    }

    /// Out of order, with runs spilled to disk and keys repeated across them: what comes out is
    /// every row once, in key order, and each key's rows in file order (so the last one wins).
    #[test]
    fn disordered_rows_come_out_in_key_order_and_repeats_in_file_order() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut items = Vec::new();
        // Ascending first (handed straight on), then random keys below them, from 500 (many
        // repeats).
        for n in 0..50 {
            items.push(item(&format!("a{n:04}"), n));
        }
        for n in 0..3000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            items.push(item(&format!("0{:04}", (state >> 33) % 500), 1000 + n));
        }
        let mut ordered = KeyOrdered::spilling_past(4096);
        let mut out = run(&mut ordered, batches(items.clone()));
        assert!(!ordered.spilled.is_empty(), "the test spills runs");
        let passed: Vec<Item> = out.concat();
        assert_eq!(passed, items[..50].to_vec(), "the ascending batches went straight on");
        finish(ordered, &mut out);
        let all: Vec<Item> = out.concat();
        assert_eq!(all.len(), items.len(), "nothing lost, nothing doubled");
        let rest = &all[50..];
        let mut expected = items[50..].to_vec();
        expected.sort_by_key(|item| ItemKey::of(item).unwrap());
        assert_eq!(rest, expected.as_slice(), "key order; a key's rows in file order");
    }

    #[test]
    fn a_refused_send_stops_the_merge() {
        let mut ordered = KeyOrdered::default();
        let items: Vec<Item> = (0..100).rev().map(|n| item(&format!("{n:04}"), n)).collect();
        let mut sent = 0;
        for batch in batches(items) {
            ordered.push(batch, &mut |_| true).unwrap();
        }
        let finished = ordered
            .finish(&mut |_| {
                sent += 1;
                false
            })
            .unwrap();
        assert!(!finished);
        assert_eq!(sent, 1);
    }

    #[test]
    fn a_cut_short_spilled_row_is_an_error_not_the_end() {
        let row = Gathered {
            key: ItemKey::new("d", "k"),
            order: 7,
            encoded: postcard::to_stdvec(&item("k", 1)).unwrap(),
        };
        let mut bytes = Vec::new();
        write_row(&mut bytes, &row).unwrap();
        assert!(
            read_row(&mut &bytes[..0]).unwrap().is_none(),
            "an empty rest is the end"
        );
        for cut in 1..bytes.len() {
            assert!(read_row(&mut &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let back = read_row(&mut bytes.as_slice()).unwrap().unwrap();
        assert_eq!((back.key, back.order, back.encoded), (row.key, row.order, row.encoded));
    }
}
