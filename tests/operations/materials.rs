//! Materials' files with the real binary: a 100 MB upload streamed through a process whose
//! memory barely moves, an S3-compatible store (moto, in server mode) for upload, download,
//! range and delete, and `check` finding the files no material names (`--repair` removing
//! them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::serial;
use crate::server::{admin_token, free_port, run_command, Server, BINARY, SECRET};

/// `VmRSS` or `VmHWM` of process `pid`, in bytes (Linux).
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kb * 1024
}

/// A round and a material on it, made through the API; their ids.
async fn a_material(server: &Server, token: &str) -> (i64, i64) {
    let client = reqwest::Client::new();
    let round: Value = client
        .post(server.url("/api/v1/rounds"))
        .bearer_auth(token)
        .json(
            &json!({"starts_at": "2027-04-15T16:00:00Z", "ends_at": "2027-04-15T17:00:00Z",
                      "location": "BMC – MassMutual 5", "title": "Recorded"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let round = round["id"].as_i64().unwrap();
    let material: Value = client
        .post(server.url(&format!("/api/v1/rounds/{round}/materials")))
        .bearer_auth(token)
        .json(&json!({"kind": "recording", "title": "The recording", "visibility": "public"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (round, material["id"].as_i64().unwrap())
}

/// `size` bytes of an MP4 (its `ftyp` box, then noise), generated as they are sent: the test
/// holds a few kilobytes of it at a time, so the process measured is the only one that could
/// hold it whole.
fn mp4_stream(size: u64) -> reqwest::Body {
    const CHUNK: u64 = 256 * 1024;
    let head = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    let chunks = (0..size.div_ceil(CHUNK)).map(move |i| {
        let length = CHUNK.min(size - i * CHUNK) as usize;
        let mut chunk: Vec<u8> = (0..length)
            .map(|j| ((i as usize).wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
            .collect();
        if i == 0 {
            chunk[..head.len()].copy_from_slice(&head);
        }
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_is_streamed_and_the_process_grows_by_less_than_64_mb() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let server = Server::start(&database, &dir.path().join("server.log"), &[]).await;
    let token = admin_token("ops-admin");
    let (round, material) = a_material(&server, &token).await;
    let client = reqwest::Client::new();
    // Idle, after the requests above: the baseline the upload is measured from.
    let idle = memory(server.pid(), "VmRSS");
    const SIZE: u64 = 100 * 1000 * 1000;

    let response = client
        .put(server.url(&format!("/api/v1/rounds/{round}/materials/{material}/file")))
        .bearer_auth(&token)
        .header("content-length", SIZE.to_string())
        .body(mp4_stream(SIZE))
        .send()
        .await
        .unwrap();

    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["file"]["size"], SIZE);
    assert_eq!(body["file"]["content_type"], "video/mp4");
    // The high-water mark covers the whole upload, whenever its peak came.
    let peak = memory(server.pid(), "VmHWM");
    let grown = peak.saturating_sub(idle);
    eprintln!(
        "a {SIZE}-byte upload: idle {} KiB, peak {} KiB, grown by {} KiB",
        idle / 1024,
        peak / 1024,
        grown / 1024
    );
    assert!(
        grown < 64 * 1024 * 1024,
        "the process grew by {} KiB during a {SIZE}-byte upload",
        grown / 1024
    );
    let stored = std::fs::metadata(
        walk(&PathBuf::from(format!("{database}.materials")))
            .first()
            .expect("the file is stored"),
    )
    .unwrap()
    .len();
    assert_eq!(stored, SIZE);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_file_no_material_names_and_repair_removes_it_once_it_is_old() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let server = Server::start(&database, &dir.path().join("server.log"), &[]).await;
    let token = admin_token("ops-admin");
    let (round, material) = a_material(&server, &token).await;
    let uploaded = reqwest::Client::new()
        .put(server.url(&format!("/api/v1/rounds/{round}/materials/{material}/file")))
        .bearer_auth(&token)
        .body(b"%PDF-1.7\nkept".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    drop(server);
    assert!(run_command(&database, &["check"]).status.success());

    // What a crash between a deletion's commit and its file's removal leaves: a file no
    // material names, one old and one just written.
    let files = PathBuf::from(format!("{database}.materials/materials/999"));
    std::fs::create_dir_all(&files).unwrap();
    let (old, new) = (files.join("0ld"), files.join("new"));
    std::fs::write(&old, b"orphan").unwrap();
    std::fs::write(&new, b"orphan").unwrap();
    let touched = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(touched.success());

    let checked = run_command(&database, &["check"]);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.contains("orphan file materials/999/0ld"), "{said}");
    assert!(said.contains("orphan file materials/999/new"), "{said}");

    let repaired = run_command(&database, &["check", "--repair"]);
    let said = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{said}");
    assert!(
        said.contains("removed the orphan file materials/999/0ld"),
        "{said}"
    );
    assert!(said.contains("kept the file materials/999/new"), "{said}");
    assert!(!old.exists() && new.exists());
    assert_eq!(
        walk(&PathBuf::from(format!("{database}.materials"))).len(),
        2
    );

    // A material naming a file that is gone is a problem repair cannot mend.
    std::fs::remove_file(&new).unwrap();
    for file in walk(&PathBuf::from(format!("{database}.materials"))) {
        std::fs::remove_file(file).unwrap();
    }
    let missing = run_command(&database, &["check", "--repair"]);
    let said = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(missing.status.code(), Some(1), "{said}");
    assert!(said.contains("not in the file store"), "{said}");
}

/// moto's S3 server from the project's Python tools (`scripts/python-tools` installs it into
/// `.venv`), or `LHS_MOTO_SERVER`. Missing: a failure in CI, a loud skip elsewhere.
fn moto_server() -> Option<PathBuf> {
    let path = std::env::var_os("LHS_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
    if path.is_file() {
        return Some(path);
    }
    let reason = format!(
        "{} is missing: run scripts/python-tools (or set LHS_MOTO_SERVER)",
        path.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("moto is required in CI but unavailable: {reason}");
    }
    eprintln!("\n!!!! SKIPPING the S3 test: {reason}\n!!!! (in CI this fails)\n");
    None
}

/// A moto S3 server on a free port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto(binary: &Path, log: &Path) -> Moto {
    let port = free_port();
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("moto_server starts");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(&moto.url).send().await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not answer on {}", moto.url);
}

/// The keys of the objects in `bucket` (moto lists them without checking signatures).
async fn object_keys(moto: &Moto, bucket: &str) -> Vec<String> {
    let listing = reqwest::Client::new()
        .get(format!("{}/{bucket}?list-type=2", moto.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    listing
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_compatible_store_takes_uploads_serves_them_whole_and_in_ranges_and_deletes_them() {
    let Some(binary) = moto_server() else {
        return;
    };
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let moto = start_moto(&binary, &dir.path().join("moto.log")).await;
    let bucket = "lhs-rounds-test";
    let made = reqwest::Client::new()
        .put(format!("{}/{bucket}", moto.url))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{made:?}");
    let s3 = [
        (
            "LHS_MATERIALS_URL",
            format!("s3://{bucket}/materials-of-test"),
        ),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "a-secret-that-must-not-be-logged".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ];
    let env: Vec<(&str, &str)> = s3.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let server = Server::start(&database, &dir.path().join("server.log"), &env).await;
    let token = admin_token("ops-admin");
    let (round, material) = a_material(&server, &token).await;
    let path = server.url(&format!("/api/v1/rounds/{round}/materials/{material}/file"));
    let client = reqwest::Client::new();
    // Three parts of a multipart upload, the last a short one.
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend(
        (0..12 * 1024 * 1024 + 4321).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8),
    );

    let uploaded = client
        .put(&path)
        .bearer_auth(&token)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200, "{}", server.log_text());
    let keys = object_keys(&moto, bucket).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("materials-of-test/materials/"),
        "{keys:?}"
    );
    assert!(
        !server
            .log_text()
            .contains("a-secret-that-must-not-be-logged"),
        "no credential in the log"
    );

    let whole = client.get(&path).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap(), bytes);
    let part = client
        .get(&path)
        .header("range", "bytes=6000000-6000099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 6000000-6000099/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), bytes[6_000_000..6_000_100]);

    // `check` against the same store finds everything named and nothing else.
    let mut check = Command::new(BINARY);
    check
        .args(["check"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database)
        .env("LHS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn");
    for (name, value) in &env {
        check.env(name, value);
    }
    let checked = check.output().unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{said}");
    assert!(said.contains("files (1 in s3://"), "{said}");

    let deleted = client
        .delete(server.url(&format!("/api/v1/rounds/{round}/materials/{material}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(object_keys(&moto, bucket).await.is_empty());
}
