//! Shared by the end-to-end fault tests: a workspace's configuration, the in-process pipeline,
//! what a run leaves behind (records, objects, ledger, usable consumer keys) and an object store
//! that runs out of space.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use sluice::runner::{HandlerDecorator, Pipeline, PipelineOptions};
use sluice_core::ledger::Ledger;
use sluice_core::objects::LocalObject;
use sluice_core::{BackendError, Backends, Config, Item, ObjectInfo, ObjectKey, ObjectStore, PageRequest, PutOptions};

/// A local configuration over `dir/mail`, data in `dir/data`, one consumer of `sales`.
pub fn config_text(dir: &Path, max_messages_per_run: usize) -> String {
    format!(
        "backend = \"local\"\ndata_dir = \"{data}\"\n\n[gmail]\nsource = \"local\"\nmail_dir = \"{mail}\"\nmax_messages_per_run = {max_messages_per_run}\n\n{datasets}\n[tokens.consumers.sales.analytics]\nscopes = [\"records:read\"]\n",
        data = dir.join("data").display(),
        mail = dir.join("mail").display(),
        datasets = sluice::synthetic::datasets_config(),
    )
}

pub async fn open_pipeline(
    config: &Config,
    backends: Backends,
    base_dir: &Path,
    decorate: Option<HandlerDecorator>,
) -> Pipeline {
    let options = PipelineOptions {
        definition: None,
        base_dir: base_dir.to_path_buf(),
        decorate,
        show_progress: false,
        lambda_binaries: None,
        activities: None,
    };
    Pipeline::open(config, backends, options).await.unwrap()
}

/// What a run leaves behind, in a form two workspaces can be compared in.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// (dataset, key) -> the record's data.
    pub records: BTreeMap<(String, String), String>,
    /// Every object outside `runs/` (the executions' own bookkeeping): key -> size.
    pub objects: BTreeMap<String, u64>,
    /// Ledger source -> state.
    pub ledger: BTreeMap<String, String>,
    /// (dataset, consumer) -> usable keys (read from the SQLite file: local backends only).
    pub usable_keys: Option<BTreeMap<(String, String), usize>>,
}

impl Snapshot {
    pub fn assert_same(&self, other: &Snapshot, context: &str) {
        let differ = |what: &str| format!("{what} differ from a clean run's: {context}");
        assert_eq!(self.records.len(), other.records.len(), "{}", differ("record counts"));
        assert!(self.records == other.records, "{}", differ("records"));
        let only_here: Vec<_> = self
            .objects
            .keys()
            .filter(|k| !other.objects.contains_key(*k))
            .collect();
        let only_there: Vec<_> = other
            .objects
            .keys()
            .filter(|k| !self.objects.contains_key(*k))
            .collect();
        assert!(
            self.objects == other.objects,
            "{}\nonly in the clean run: {only_here:?}\nonly after the faults: {only_there:?}",
            differ("objects")
        );
        assert_eq!(self.ledger, other.ledger, "{}", differ("ledger entries"));
        if let (Some(mine), Some(theirs)) = (&self.usable_keys, &other.usable_keys) {
            assert_eq!(mine, theirs, "{}", differ("usable consumer keys"));
        }
    }
}

async fn all_items(table: &dyn sluice_core::Table, pk: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut request = PageRequest {
        limit: 1000,
        ..PageRequest::default()
    };
    loop {
        let page = table.query(pk, &request).await.unwrap();
        items.extend(page.items);
        match page.last_sk {
            Some(last) => request.start_after = Some(last),
            None => return items,
        }
    }
}

pub async fn snapshot(backends: &Backends, config: &Config) -> Snapshot {
    let mut records = BTreeMap::new();
    for dataset in sluice::synthetic::DATASETS {
        for item in all_items(backends.records.as_ref(), dataset).await {
            let key = item["sk"].as_str().unwrap_or_default().to_string();
            records.insert(
                (dataset.to_string(), key),
                serde_json::to_string(&item["data"]).unwrap(),
            );
        }
    }
    let objects = backends
        .objects
        .list("")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| !o.key.as_str().starts_with("runs/"))
        .map(|o| (o.key.to_string(), o.size))
        .collect();
    let mut ledger = BTreeMap::new();
    Ledger::new(backends.control.clone(), "default")
        .for_each(|e| {
            ledger.insert(e.source, e.state.as_str().to_string());
        })
        .await
        .unwrap();
    Snapshot {
        records,
        objects,
        ledger,
        usable_keys: (config.backend == sluice_core::BackendKind::Local).then(|| usable_keys(config)),
    }
}

/// Usable API keys per consumer, read from the SQLite file (keys are stored by hash, one
/// partition each, which no query lists).
fn usable_keys(config: &Config) -> BTreeMap<(String, String), usize> {
    let connection =
        rusqlite::Connection::open_with_flags(config.sqlite_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = connection
        .prepare("SELECT pk, sk, item FROM items WHERE tbl = 'control' AND pk LIKE 'apikey#%'")
        .unwrap();
    let mut out = BTreeMap::new();
    let mut rows = statement.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let (pk, sk): (String, String) = (row.get(0).unwrap(), row.get(1).unwrap());
        let item: Item = sluice_core::tables::decode_stored_item(&pk, &sk, row.get_ref(2).unwrap()).unwrap();
        let Some(dataset) = item.get("dataset").and_then(|v| v.as_str()) else {
            continue;
        };
        let consumer = item.get("consumer").and_then(|v| v.as_str()).unwrap_or_default();
        let revoked = matches!(item.get("revoked"), Some(sluice_core::AttrValue::Bool(true)));
        let entry = out.entry((dataset.to_string(), consumer.to_string())).or_insert(0);
        if !revoked {
            *entry += 1;
        }
    }
    out
}

/// An object store whose disk fills after `writes` more writes: every write then fails with
/// "No space left on device" until `full` is cleared.
pub struct FillingObjectStore {
    inner: Arc<dyn ObjectStore>,
    writes_left: AtomicI64,
    full: Arc<AtomicBool>,
}

impl FillingObjectStore {
    pub fn new(inner: Arc<dyn ObjectStore>, writes: i64, full: Arc<AtomicBool>) -> Self {
        FillingObjectStore {
            inner,
            writes_left: AtomicI64::new(writes),
            full,
        }
    }

    fn write(&self, key: &ObjectKey) -> Result<(), BackendError> {
        if self.writes_left.fetch_sub(1, Ordering::SeqCst) == 0 {
            self.full.store(true, Ordering::SeqCst);
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(BackendError::Io {
                operation: "write",
                path: key.to_string(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FillingObjectStore {
    async fn put_bytes(&self, key: &ObjectKey, body: Bytes, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        self.write(key)?;
        self.inner.put_bytes(key, body, options).await
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, options: &PutOptions) -> Result<ObjectInfo, BackendError> {
        self.write(key)?;
        self.inner.put_file(key, path, options).await
    }

    async fn get_bytes(&self, key: &ObjectKey, max_bytes: u64) -> Result<Bytes, BackendError> {
        self.inner.get_bytes(key, max_bytes).await
    }

    async fn download(&self, key: &ObjectKey) -> Result<LocalObject, BackendError> {
        self.inner.download(key).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BackendError> {
        self.inner.head(key).await
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        to: &ObjectKey,
        extra_metadata: &BTreeMap<String, String>,
    ) -> Result<ObjectInfo, BackendError> {
        self.write(to)?;
        self.inner.copy(from, to, extra_metadata).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BackendError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(prefix).await
    }
}
