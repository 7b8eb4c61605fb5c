//! Grouping items into BatchWriteItem-sized batches. DynamoDB refuses a batch that names one
//! key twice, so a repeated key inside a batch replaces the earlier item (last wins).

use std::collections::HashMap;

use sluice_core::tables::MAX_BATCH_WRITE;
use sluice_core::{Item, ItemKey};

#[derive(Default)]
pub struct BatchBuilder {
    items: Vec<Item>,
    positions: HashMap<ItemKey, usize>,
    /// Items replaced by a later one with the same key.
    pub collapsed: u64,
}

impl BatchBuilder {
    /// Adds an item; returns a full batch when this one completed it.
    pub fn push(&mut self, key: ItemKey, item: Item) -> Option<Vec<Item>> {
        if let Some(&position) = self.positions.get(&key) {
            self.items[position] = item;
            self.collapsed += 1;
            return None;
        }
        self.positions.insert(key, self.items.len());
        self.items.push(item);
        if self.items.len() == MAX_BATCH_WRITE {
            return self.take();
        }
        None
    }

    /// The partial batch, if any.
    pub fn take(&mut self) -> Option<Vec<Item>> {
        self.positions.clear();
        (!self.items.is_empty()).then(|| std::mem::take(&mut self.items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::AttrValue;

    fn item(sk: &str, value: &str) -> (ItemKey, Item) {
        let key = ItemKey::new("d", sk);
        let mut item = key.to_item();
        item.insert("v".into(), AttrValue::S(value.into()));
        (key, item)
    }

    #[test]
    fn batches_hold_25_distinct_keys_and_the_last_duplicate_wins() {
        let mut builder = BatchBuilder::default();
        let (k, i) = item("a", "first");
        assert!(builder.push(k, i).is_none());
        let (k, i) = item("a", "second");
        assert!(builder.push(k, i).is_none());
        let mut full = None;
        for n in 0..24 {
            let (k, i) = item(&format!("k{n}"), "x");
            full = builder.push(k, i);
        }
        let full = full.expect("the 25th distinct key completes a batch");
        assert_eq!(full.len(), 25);
        assert_eq!(full[0]["v"], AttrValue::S("second".into()));
        assert_eq!(builder.collapsed, 1);
        assert!(builder.take().is_none());
    }
}
