//! Where the lake's objects live: a local folder, or a bucket of S3 or of an S3-compatible
//! store (MinIO, moto, R2…), configured as the AWS ecosystem expects.
//!
//! Keys are `/`-separated paths under the lake's root (`conversations/created_at_month=2024-06/
//! data.parquet`). Every put is whole or absent: a local file is written aside under a hidden
//! name and renamed; an S3 PUT is atomic by itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use object_store::path::Path as ObjectPath;

use super::LakeLocation;
use crate::store::StoreError;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// The lake's objects, local or remote, and what was written to them.
pub struct Files {
    location: LakeLocation,
    backend: Backend,
    objects_written: AtomicU64,
    bytes_written: AtomicU64,
}

enum Backend {
    Local(PathBuf),
    Remote { store: Arc<dyn ObjectStore>, root: String },
}

/// The runtime that carries the lake's object-store requests and the Delta kernel's work. One
/// for the process, never dropped: callers are often on another runtime's thread, where a
/// runtime can neither be blocked on nor dropped.
pub(super) fn lake_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("lake-io").enable_all().build().expect("a runtime for the lake's requests")
    })
}

/// Runs an object-store call on the lake's runtime and waits for it, from any thread. The
/// answer comes back on a plain channel: polling the task's handle from inside another
/// runtime's task would spin once that task's cooperative budget is spent.
pub(super) fn block_on<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    lake_runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("a lake I/O task does not panic")
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Files({})", self.location)
    }
}

/// Where the S3 settings are read from (the process's environment, the way the AWS tools read
/// them; a fixed map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Files {
    /// Opens the lake's location. For S3 the settings come from `env` (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`); plain
    /// http is allowed only for an endpoint on this machine (loopback).
    pub fn open(location: &LakeLocation, env: Env<'_>) -> Result<Self, StoreError> {
        let backend = match location {
            LakeLocation::Local(path) => Backend::Local(path.clone()),
            LakeLocation::S3 { bucket, prefix } => {
                let (store, root) = s3_store(bucket, prefix, env)?;
                Backend::Remote { store, root }
            }
        };
        Ok(Files { location: location.clone(), backend, objects_written: AtomicU64::new(0), bytes_written: AtomicU64::new(0) })
    }

    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    /// The object store at the root of the file system or of the bucket, which `url` paths
    /// address (what the Delta engine needs).
    pub(super) fn root_store(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        match &self.backend {
            Backend::Local(root) => {
                std::fs::create_dir_all(root).map_err(|e| self.io_error("", e))?;
                Ok(Arc::new(object_store::local::LocalFileSystem::new()))
            }
            Backend::Remote { store, .. } => Ok(Arc::clone(store)),
        }
    }

    /// Counts an object written by other means (the Delta engine's store).
    pub(super) fn record_write(&self, bytes: u64) {
        self.objects_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A key's full name, for messages and for readers (`s3://b/p/key`, or a local path).
    pub fn describe(&self, key: &str) -> String {
        match &self.backend {
            Backend::Local(root) => root.join(key).display().to_string(),
            Backend::Remote { .. } if key.is_empty() => self.location.to_string(),
            Backend::Remote { .. } => format!("{}/{key}", self.location),
        }
    }

    /// The URL of a folder of the lake (a Delta table's root), ending in `/`.
    pub fn url(&self, key: &str) -> Result<url::Url, StoreError> {
        let text = match &self.backend {
            Backend::Local(root) => {
                let absolute = std::path::absolute(root.join(key)).map_err(|e| self.io_error(key, e))?;
                url::Url::from_directory_path(&absolute).map_err(|()| self.io_error(key, "not an absolute path"))?.to_string()
            }
            Backend::Remote { .. } => format!("{}/", self.describe(key).trim_end_matches('/')),
        };
        url::Url::parse(&text).map_err(|e| self.io_error(key, e))
    }

    fn io_error(&self, key: &str, reason: impl ToString) -> StoreError {
        StoreError::LakeIo { path: self.describe(key), reason: reason.to_string() }
    }

    /// Objects and bytes put so far.
    pub fn written(&self) -> (u64, u64) {
        (self.objects_written.load(Ordering::Relaxed), self.bytes_written.load(Ordering::Relaxed))
    }

    fn object_path(root: &str, key: &str) -> ObjectPath {
        ObjectPath::from(if root.is_empty() { key.to_string() } else { format!("{root}/{key}") })
    }

    /// Writes `bytes` as `key`, whole or not at all, replacing what was there.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        match &self.backend {
            Backend::Local(root) => {
                let path = root.join(key);
                write_local(&path, &bytes).map_err(|e| self.io_error(key, e))?;
            }
            Backend::Remote { store, root } => {
                let (store, path) = (Arc::clone(store), Self::object_path(root, key));
                block_on(async move { store.put(&path, bytes.into()).await }).map_err(|e| self.io_error(key, e))?;
            }
        }
        self.objects_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// The object `key` whole; None when it is not there.
    pub fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        match &self.backend {
            Backend::Local(root) => match std::fs::read(root.join(key)) {
                Ok(body) => Ok(Some(body.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io_error(key, e)),
            },
            Backend::Remote { store, root } => {
                let (store, path) = (Arc::clone(store), Self::object_path(root, key));
                match block_on(async move { store.get(&path).await?.bytes().await }) {
                    Ok(body) => Ok(Some(body)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.io_error(key, e)),
                }
            }
        }
    }

    /// Deletes `key`; a key that is not there is fine.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Local(root) => match std::fs::remove_file(root.join(key)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.io_error(key, e)),
            },
            Backend::Remote { store, root } => {
                let (store, path) = (Arc::clone(store), Self::object_path(root, key));
                match block_on(async move { store.delete(&path).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.io_error(key, e)),
                }
            }
        }
    }

    /// Every object under `prefix` (a folder key, without the trailing slash), at any depth,
    /// sorted by key. Hidden local files (written aside) are left out.
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = match &self.backend {
            Backend::Local(root) => {
                let mut out = Vec::new();
                collect_local(root, &root.join(prefix), &mut out);
                out
            }
            Backend::Remote { store, root } => {
                let (store, path) = (Arc::clone(store), Self::object_path(root, prefix));
                let skip = if root.is_empty() { 0 } else { root.len() + 1 };
                let listed: Vec<object_store::ObjectMeta> = block_on(async move { store.list(Some(&path)).try_collect().await }).map_err(|e| self.io_error(prefix, e))?;
                listed
                    .into_iter()
                    .map(|m| Listed { key: m.location.as_ref()[skip.min(m.location.as_ref().len())..].to_string(), size: m.size, modified: m.last_modified })
                    .collect()
            }
        };
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes every object under `prefix`.
    pub fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(prefix);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.io_error(prefix, e)),
                }
            }
            Backend::Remote { .. } => self.list(prefix)?.iter().try_for_each(|o| self.delete(&o.key)),
        }
    }

    /// Removes a local folder left empty (S3 has no folders).
    pub fn remove_empty_folder(&self, prefix: &str) {
        if let Backend::Local(root) = &self.backend {
            let _ = std::fs::remove_dir(root.join(prefix));
        }
    }
}

fn write_local(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = crate::fsutil::aside(path);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    crate::fsutil::commit_aside(&tmp, path)
}

fn collect_local(root: &Path, dir: &Path, out: &mut Vec<Listed>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_local(root, &path, out);
        } else if let Ok(meta) = entry.metadata() {
            let key = path.strip_prefix(root).unwrap_or(&path).components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
            let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
            out.push(Listed { key, size: meta.len(), modified });
        }
    }
}

/// An S3 client for `bucket`, and the root inside it. Path-style addressing (what
/// S3-compatible stores expect); http only towards loopback.
fn s3_store(bucket: &str, prefix: &str, env: Env<'_>) -> Result<(Arc<dyn ObjectStore>, String), StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let refuse = |reason: String| StoreError::LakeConfig { reason };
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_virtual_hosted_style_request(false);
    for (name, key) in [
        ("AWS_ACCESS_KEY_ID", AmazonS3ConfigKey::AccessKeyId),
        ("AWS_SECRET_ACCESS_KEY", AmazonS3ConfigKey::SecretAccessKey),
        ("AWS_SESSION_TOKEN", AmazonS3ConfigKey::Token),
    ] {
        if let Some(v) = var(name) {
            builder = builder.with_config(key, v);
        }
    }
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    builder = builder.with_region(region);
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")) {
        let parsed = url::Url::parse(&endpoint).map_err(|e| refuse(format!("AWS_ENDPOINT_URL `{endpoint}` is not a URL ({e}); write it as https://host:port.")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&parsed) => builder = builder.with_allow_http(true),
            "http" => {
                return Err(refuse(format!(
                    "AWS_ENDPOINT_URL `{endpoint}` is plain http to another machine, which would send the lake and its credentials unencrypted; use https (plain http is allowed only for a loopback endpoint)."
                )));
            }
            other => return Err(refuse(format!("AWS_ENDPOINT_URL `{endpoint}` has the scheme `{other}`; use https://host:port."))),
        }
        builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
    }
    if var("AWS_ACCESS_KEY_ID").is_none() != var("AWS_SECRET_ACCESS_KEY").is_none() {
        return Err(refuse("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both (or neither, to use the instance's role).".into()));
    }
    // Conditional writes (If-None-Match) are what the Delta log's commit protocol relies on.
    builder = builder.with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
    let store = builder.build().map_err(|e| refuse(format!("the S3 settings are incomplete ({e}); set AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")))?;
    Ok((Arc::new(store), prefix.to_string()))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn plain_http_only_to_loopback_and_the_secret_never_in_the_sentence() {
        let s3 = LakeLocation::S3 { bucket: "b".into(), prefix: "p".into() };
        let far = env_of(&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"), ("AWS_ENDPOINT_URL", "http://10.1.2.3:9000")]);
        let e = Files::open(&s3, &far).unwrap_err().to_string();
        assert!(e.contains("loopback") && !e.contains("s3cr3t-value"), "{e}");
        let near = env_of(&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")]);
        let files = Files::open(&s3, &near).unwrap();
        assert_eq!(files.describe("t/data.parquet"), "s3://b/p/t/data.parquet");
        assert_eq!(files.url("t").unwrap().as_str(), "s3://b/p/t/");
        assert!(!format!("{files:?}").contains("s3cr3t"));
        let half = env_of(&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")]);
        assert!(Files::open(&s3, &half).unwrap_err().to_string().contains("set both"));
    }

    #[test]
    fn local_puts_are_whole_listed_by_key_and_deleted_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(&LakeLocation::Local(dir.path().join("lake")), &|_| None).unwrap();
        files.put("t/p=1/data.parquet", b"one".to_vec()).unwrap();
        files.put("t/p=1/data.parquet", b"two!".to_vec()).unwrap();
        files.put("t/p=2/data.parquet", b"x".to_vec()).unwrap();
        let keys: Vec<_> = files.list("t").unwrap().into_iter().map(|l| (l.key, l.size)).collect();
        assert_eq!(keys, [("t/p=1/data.parquet".to_string(), 4), ("t/p=2/data.parquet".to_string(), 1)]);
        assert_eq!(files.written(), (3, 8));
        files.delete("t/p=2/data.parquet").unwrap();
        files.delete("t/p=2/data.parquet").unwrap();
        files.delete_prefix("t").unwrap();
        assert!(files.list("t").unwrap().is_empty());
        assert!(files.url("t").unwrap().as_str().ends_with("/lake/t/"));
    }
}
