//! The file store: where uploaded files live, through the `object_store` crate, which puts a
//! local directory and any S3-compatible store behind one interface.
//!
//! | variable | flag | default |
//! |---|---|---|
//! | `LHS_MATERIALS_URL` | `--materials-url` | on SQLite, the directory `<database file>.materials` beside it; on PostgreSQL unset (uploads refused until it is set) |
//! | `LHS_MATERIAL_MAX_MB` | `--material-max-mb` | `100` (the largest upload, in MiB) |
//! | `LHS_MATERIAL_HTTP_HOSTS` | `--material-http-hosts` | empty (material links must be `https`, but on these hosts) |
//!
//! `LHS_MATERIALS_URL` is a directory (a path, or `file:///path`) or `s3://bucket/prefix`, with
//! the usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and
//! `AWS_ENDPOINT_URL` with `AWS_ALLOW_HTTP=true` for a store of one's own).
//!
//! Uploads are streamed: a file is never held in memory whole. Its first bytes are kept until
//! the caller's sniffer has said what it is (and refused it before anything is stored), then
//! the bytes go on to a multipart upload in parts of [`PART_BYTES`], at most
//! [`PARTS_IN_FLIGHT`] at a time, counted and hashed (SHA-256) on the way. A file past the
//! limit, refused, or cut short is aborted: no partial object is left (a local directory's
//! staging file and an S3 multipart upload both go). An object appears under its key only once
//! it is whole.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

/// The most bytes read from an upload before its kind is decided: enough for a sniffer to see
/// the first entries of an Office document's ZIP.
pub const HEAD_BYTES: usize = 64 * 1024;
/// The size of one part of a multipart upload: S3's smallest part.
pub const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts uploading at once: with the part being filled, what an upload holds in memory.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Where uploaded files go, as the settings say.
#[derive(Clone)]
pub struct Files {
    store: Option<Arc<dyn ObjectStore>>,
    /// Where the store is, for messages and logs (no credentials: they come from `AWS_*`).
    location: String,
    /// The largest upload, in bytes.
    pub max_bytes: u64,
}

impl fmt::Debug for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Files")
            .field("location", &self.location)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Why an upload did not become a file.
#[derive(Debug)]
pub enum UploadError {
    /// Past the limit of this many bytes.
    TooLarge { limit: u64 },
    /// The sniffer refused the first bytes (with its reason).
    Refused(String),
    /// The client's body could not be read to its end.
    Body(String),
    /// The store failed.
    Store(String),
}

/// A file, whole in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// What the sniffer said it is.
    pub content_type: String,
}

/// A file (or the part of it asked for), as a stream of bytes.
pub struct Download {
    pub bytes: BoxStream<'static, Result<Bytes, std::io::Error>>,
    /// The bytes this download holds, within the file.
    pub range: Range<u64>,
}

/// A file in the store: its key and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl Files {
    /// The store `url` names (see the module's table); `None` with `default_dir`, when given, as
    /// the directory. `max_mb` is the largest upload.
    pub fn open(
        url: Option<&str>,
        default_dir: Option<&std::path::Path>,
        max_mb: u32,
    ) -> Result<Files, String> {
        let max_bytes = u64::from(max_mb) * 1024 * 1024;
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        let (store, location): (Option<Arc<dyn ObjectStore>>, String) = match url {
            Some(url) if url.starts_with("s3://") => {
                let (bucket, prefix) = split_bucket(url)?;
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| format!("LHS_MATERIALS_URL {url}: {e}"))?;
                (Some(prefixed(s3, prefix)), url.to_owned())
            }
            Some(url) if url.contains("://") && !url.starts_with("file://") => {
                return Err(format!(
                    "LHS_MATERIALS_URL {url:?} is neither a directory (a path or file:///path) \
                     nor s3://bucket/prefix"
                ))
            }
            Some(url) => {
                let dir = std::path::PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
                (Some(directory(&dir)?), dir.display().to_string())
            }
            None => match default_dir {
                Some(dir) => (Some(directory(dir)?), dir.display().to_string()),
                None => (None, "nowhere (LHS_MATERIALS_URL is not set)".to_owned()),
            },
        };
        Ok(Files {
            store,
            location,
            max_bytes,
        })
    }

    /// Files in memory, for tests.
    pub fn in_memory(max_bytes: u64) -> Files {
        Files {
            store: Some(Arc::new(object_store::memory::InMemory::new())),
            location: "memory".to_owned(),
            max_bytes,
        }
    }

    /// Where the files are, for messages and logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether files can be stored at all.
    pub fn is_configured(&self) -> bool {
        self.store.is_some()
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>, String> {
        self.store.as_ref().ok_or_else(|| {
            "no file store is configured: set LHS_MATERIALS_URL to a directory every replica \
             shares, or to s3://bucket/prefix"
                .to_owned()
        })
    }

    /// Streams `body` into a new object at `key`. `sniff` sees the first bytes (up to
    /// [`HEAD_BYTES`], or all of a smaller file) and says what the file is, or why it is
    /// refused. Nothing is left at `key` unless the whole file was stored.
    pub async fn put_stream<S, E>(
        &self,
        key: &str,
        body: S,
        sniff: impl FnOnce(&[u8]) -> Result<String, String>,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: fmt::Display,
    {
        let store = self.store().map_err(UploadError::Store)?.clone();
        let limit = self.max_bytes;
        let mut body = body;
        let mut head: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        let mut ended = false;
        // The head first: nothing is stored before the sniffer has seen it.
        while head.len() < HEAD_BYTES {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(UploadError::TooLarge { limit });
                    }
                    head.extend_from_slice(&chunk);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let content_type = sniff(&head).map_err(UploadError::Refused)?;
        let location = Key::from(key);
        let upload = store
            .put_multipart(&location)
            .await
            .map_err(|e| UploadError::Store(e.to_string()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut hash = Sha256::new();
        hash.update(&head);
        writer.write(&head);
        drop(head);
        let streamed: Result<(), UploadError> = async {
            if ended {
                return Ok(());
            }
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(UploadError::TooLarge { limit });
                }
                hash.update(&chunk);
                // Back-pressure: the client's bytes wait while the parts before them upload.
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| UploadError::Store(e.to_string()))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(error) = streamed {
            if let Err(abort) = writer.abort().await {
                log::warn!("file store: cannot abort the upload of {key}: {abort}");
            }
            return Err(error);
        }
        writer
            .finish()
            .await
            .map_err(|e| UploadError::Store(e.to_string()))?;
        Ok(Stored {
            size,
            sha256: hex::encode(hash.finalize()),
            content_type,
        })
    }

    /// The bytes of `key` in `range` (the whole file without one), streamed.
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Download, String> {
        let store = self.store()?;
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = store
            .get_opts(&Key::from(key), options)
            .await
            .map_err(|e| format!("cannot read {key}: {e}"))?;
        let range = result.range.clone();
        let bytes = result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        Ok(Download { bytes, range })
    }

    /// Deletes `key`; a key that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        let store = self.store()?;
        match store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(format!("cannot delete {key}: {e}")),
        }
    }

    /// Deletes each of `keys` after the write that let go of them has committed, logging what
    /// cannot be deleted: such a file is an orphan, which `lhs-rounds check` reports and
    /// `check --repair` removes.
    pub async fn delete_after_commit(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.delete(key).await {
                log::warn!("file store: {e}; `lhs-rounds check --repair` will remove it");
            }
        }
    }

    /// Every file under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, String> {
        let store = self.store()?;
        let prefix = Key::from(prefix);
        store
            .list(Some(&prefix))
            .map_ok(|meta| Listed {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .try_collect()
            .await
            .map_err(|e| format!("cannot list the files in {}: {e}", self.location))
    }
}

/// Where the files of the SQLite database at `sqlite_path` go by default: beside it, as its
/// token secret does.
pub fn default_dir(sqlite_path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{sqlite_path}.materials"))
}

/// A local directory, made if it is missing.
fn directory(dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot make the materials directory {}: {e}", dir.display()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| format!("cannot use {} for files: {e}", dir.display()))?;
    Ok(Arc::new(store))
}

fn prefixed(store: impl ObjectStore, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// `s3://bucket/some/prefix` as the bucket and the prefix.
fn split_bucket(url: &str) -> Result<(&str, &str), String> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "LHS_MATERIALS_URL {url:?} names no bucket: write s3://bucket/prefix"
        ));
    }
    Ok((bucket, prefix.trim_matches('/')))
}

/// A new random key under `prefix`: uploads never overwrite one another, so a file can be
/// replaced and the old one deleted after the commit without touching the new one.
pub fn new_key(prefix: &str) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a file key: {e}"))?;
    Ok(format!("{prefix}/{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: Vec<Vec<u8>>) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))))
    }

    fn text(head: &[u8]) -> Result<String, String> {
        if head.starts_with(b"%PDF") {
            Ok("application/pdf".to_owned())
        } else {
            Err("not a PDF".to_owned())
        }
    }

    #[tokio::test]
    async fn a_file_streams_in_and_back_out_with_its_size_and_hash() {
        let files = Files::in_memory(20 * 1024 * 1024);
        let mut data = b"%PDF-1.7\n".to_vec();
        data.extend(std::iter::repeat_n(7u8, 12 * 1024 * 1024));
        let chunks: Vec<Vec<u8>> = data.chunks(100_000).map(<[u8]>::to_vec).collect();
        let stored = files
            .put_stream("m/1/a", body(chunks), text)
            .await
            .expect("stored");
        assert_eq!(stored.size, data.len() as u64);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        let part = files.get("m/1/a", Some(10..20)).await.expect("a range");
        assert_eq!(part.range, 10..20);
        let bytes: Vec<Bytes> = part.bytes.try_collect().await.expect("the bytes");
        assert_eq!(bytes.concat(), data[10..20]);
        files.delete("m/1/a").await.expect("deleted");
        files.delete("m/1/a").await.expect("deleting twice is fine");
        assert!(files.list("m").await.expect("a list").is_empty());
    }

    #[tokio::test]
    async fn past_the_limit_or_refused_nothing_is_left() {
        let files = Files::in_memory(1000);
        let big = body(vec![b"%PDF".to_vec(), vec![0; 600], vec![0; 600]]);
        assert!(matches!(
            files.put_stream("m/1/b", big, text).await,
            Err(UploadError::TooLarge { limit: 1000 })
        ));
        let other = body(vec![b"GIF89a".to_vec()]);
        assert!(matches!(
            files.put_stream("m/1/c", other, text).await,
            Err(UploadError::Refused(_))
        ));
        assert!(files.list("m").await.expect("a list").is_empty());
    }

    #[test]
    fn an_s3_url_names_its_bucket_and_prefix() {
        assert_eq!(
            split_bucket("s3://rounds/materials/"),
            Ok(("rounds", "materials"))
        );
        assert_eq!(split_bucket("s3://rounds"), Ok(("rounds", "")));
        assert!(split_bucket("s3:///x").is_err());
        assert!(Files::open(Some("ftp://x"), None, 1).is_err());
    }
}
