//! The materials of a round: links and files, shown by their visibility to each role (and to
//! no one else, not even as a 403), uploads streamed and refused past the limit or by their
//! bytes with nothing left behind, downloads with their validators and ranges, and files gone
//! when their material or round is.

use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, TestApp};

on_both_backends!(
    each_role_sees_the_materials_its_visibility_allows_and_nothing_else_exists_for_it,
    a_link_is_https_or_plain_http_on_an_allowed_host,
    a_file_is_downloaded_as_an_attachment_with_its_etag_and_ranges,
    an_upload_past_the_limit_is_413_and_leaves_no_file,
    an_upload_of_another_kind_is_415_and_leaves_no_file,
    deleting_a_material_or_its_round_deletes_its_files,
    a_material_with_a_file_does_not_become_a_link,
    public_materials_are_linked_from_the_rounds_calendar_event,
);

/// A PDF's first bytes, then `size` bytes in all.
fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut i: u32 = 0;
    while bytes.len() < size {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((i >> 16) as u8);
    }
    bytes.truncate(size);
    bytes
}

async fn material(app: &TestApp, round: i32, body: Value) -> i32 {
    id_of(
        &app.create(&format!("/api/v1/rounds/{round}/materials"), body)
            .await,
    )
}

async fn upload(app: &TestApp, round: i32, id: i32, bytes: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/rounds/{round}/materials/{id}/file")))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// Every file under the app's materials directory.
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&app.materials_dir, &mut files);
    files
}

async fn get_as(app: &TestApp, token: Option<&str>, path: &str) -> reqwest::Response {
    app.request_as(token, Method::GET, path, None).await
}

async fn each_role_sees_the_materials_its_visibility_allows_and_nothing_else_exists_for_it(
    app: TestApp,
) {
    let round = id_of(
        &app.round("2027-02-18", json!({"title": "Patient comments"}))
            .await,
    );
    let base = format!("/api/v1/rounds/{round}/materials");
    let public = material(
        &app,
        round,
        json!({"kind": "slides", "title": "Slides", "url": "https://example.org/slides.pdf", "visibility": "public"}),
    )
    .await;
    let staff = material(
        &app,
        round,
        json!({"kind": "recording", "title": "Recording", "url": "https://video.example.org/r/1", "visibility": "staff", "position": 2}),
    )
    .await;
    let organizers = material(
        &app,
        round,
        json!({"kind": "handout", "title": "Draft handout", "url": "https://example.org/draft"}),
    )
    .await;
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);

    for (who, token, expected) in [
        ("anyone", None, vec![public]),
        ("staff", Some(viewer.as_str()), vec![public, staff]),
        (
            "an organizer",
            Some(organizer.as_str()),
            vec![public, organizers, staff],
        ),
    ] {
        let page: Value = get_as(&app, token, &base).await.json().await.unwrap();
        let ids: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = expected.into_iter().map(i64::from).collect();
        assert_eq!(ids, expected, "{who}: by position, then as added");
        assert_eq!(page["total"], expected.len(), "{who}");
        for id in [public, staff, organizers] {
            let response = get_as(&app, token, &format!("{base}/{id}")).await;
            let seen = expected.contains(&i64::from(id));
            assert_eq!(
                response.status(),
                if seen { 200 } else { 404 },
                "{who}, {id}"
            );
        }
    }
    // The default is organizers only.
    let draft: Value = app.get_ok(&format!("{base}/{organizers}")).await;
    assert_eq!(draft["visibility"], "organizers");
    // Nor is it there to change for anyone but organizers.
    let changed = app
        .request_as(
            Some(&viewer),
            Method::PATCH,
            &format!("{base}/{staff}"),
            Some(&json!({"title": "x"})),
        )
        .await;
    assert_problem(changed, 403).await;
    // A material of another round is not this round's.
    let other = id_of(&app.round("2027-03-18", json!({})).await);
    let elsewhere = app
        .get(&format!("/api/v1/rounds/{other}/materials/{public}"))
        .await;
    assert_problem(elsewhere, 404).await;
    assert_problem(app.get("/api/v1/rounds/999999/materials").await, 404).await;

    // The change feed shows each material to those who may see it.
    let feed_ids = |feed: &Value| -> Vec<i64> {
        feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["resource"] == "material")
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let anyone: Value = get_as(&app, None, "/api/v1/changes?after=0")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed_ids(&anyone), [i64::from(public)]);
    let staff_feed: Value = get_as(&app, Some(&viewer), "/api/v1/changes?after=0")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed_ids(&staff_feed), [i64::from(public), i64::from(staff)]);
    assert_eq!(
        feed_ids(&app.get_ok("/api/v1/changes?after=0").await).len(),
        3
    );
    // A material made organizers-only is, for the public, deleted.
    app.patch(
        &format!("{base}/{public}"),
        &json!({"visibility": "organizers"}),
    )
    .await;
    let after: Value = get_as(&app, None, "/api/v1/changes?after=0")
        .await
        .json()
        .await
        .unwrap();
    let item = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["resource"] == "material")
        .unwrap();
    assert_eq!(item["id"], public);
    assert_eq!(item["action"], "deleted");
    assert_eq!(item["data"], Value::Null);
}

async fn a_link_is_https_or_plain_http_on_an_allowed_host(app: TestApp) {
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let path = format!("/api/v1/rounds/{round}/materials");
    for (url, kind) in [
        ("http://intranet.example.org/slides", "slides"),
        ("ftp://example.org/slides", "slides"),
        ("https://user:secret@example.org/", "article"),
        ("not a url", "link"),
    ] {
        let response = app
            .post(&path, &json!({"kind": kind, "title": "Link", "url": url}))
            .await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(error_fields(&problem), vec!["url"], "{url}");
    }
    let no_url = app
        .post(&path, &json!({"kind": "link", "title": "Link"}))
        .await;
    assert_eq!(
        error_fields(&assert_problem(no_url, 422).await),
        vec!["url"]
    );
    let kind = app
        .post(&path, &json!({"kind": "poster", "title": "Poster"}))
        .await;
    assert_eq!(error_fields(&assert_problem(kind, 422).await), vec!["kind"]);

    let allowed = spawn_app_with(app.backend(), |settings| {
        settings.material_http_hosts = "intranet.example.org".to_owned();
    })
    .await
    .unwrap();
    let round = id_of(&allowed.round("2027-02-18", json!({})).await);
    let made = allowed
        .create(
            &format!("/api/v1/rounds/{round}/materials"),
            json!({"kind": "link", "title": "Intranet", "url": "http://intranet.example.org/slides"}),
        )
        .await;
    assert_eq!(made["url"], "http://intranet.example.org/slides");
    let elsewhere = allowed
        .patch(
            &format!("/api/v1/rounds/{round}/materials/{}", id_of(&made)),
            &json!({"url": "http://example.org/slides"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(elsewhere, 422).await),
        vec!["url"]
    );
}

async fn a_file_is_downloaded_as_an_attachment_with_its_etag_and_ranges(app: TestApp) {
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let id = material(
        &app,
        round,
        json!({"kind": "slides", "title": "Patient comments: slides", "visibility": "public"}),
    )
    .await;
    let bytes = pdf(300_000);

    let response = upload(&app, round, id, bytes.clone()).await;
    assert_eq!(response.status(), 200);
    let shown: Value = response.json().await.unwrap();
    let file = &shown["file"];
    assert_eq!(file["content_type"], "application/pdf");
    assert_eq!(file["size"], 300_000);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(file["sha256"], sha.as_str());
    let download = format!("/api/v1/rounds/{round}/materials/{id}/file");
    assert_eq!(file["download_url"], download.as_str());
    assert_eq!(stored_files(&app).len(), 1);

    let whole = get_as(&app, None, &download).await;
    assert_eq!(whole.status(), 200);
    let headers = whole.headers().clone();
    let etag = format!("\"{sha}\"");
    assert_eq!(headers["etag"], etag.as_str());
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-length"], "300000");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment")
            && disposition.contains("Patient comments_ slides.pdf"),
        "{disposition}"
    );
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    let ranged = |range: &'static str| {
        app.client
            .get(app.url(&download))
            .header("range", range)
            .send()
    };
    let part = ranged("bytes=1000-1999").await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(part.headers()["content-length"], "1000");
    assert_eq!(part.bytes().await.unwrap(), bytes[1000..2000]);
    let tail = ranged("bytes=-100").await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), bytes[299_900..]);
    let open = ranged("bytes=299990-").await.unwrap();
    assert_eq!(
        open.headers()["content-range"],
        "bytes 299990-299999/300000"
    );
    let past = ranged("bytes=400000-").await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */300000");

    let stale = app
        .client
        .get(app.url(&download))
        .header("range", "bytes=0-9")
        .header("if-range", "\"another\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        200,
        "If-Range naming another version: the whole file"
    );
    let current = app
        .client
        .get(app.url(&download))
        .header("range", "bytes=0-9")
        .header("if-range", etag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 206);
    let unchanged = app
        .client
        .get(app.url(&download))
        .header("if-none-match", etag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    // A new file replaces the old, whose file goes.
    let replaced = upload(&app, round, id, b"Plain notes.\n".to_vec()).await;
    assert_eq!(replaced.status(), 200);
    let shown: Value = replaced.json().await.unwrap();
    assert_eq!(shown["file"]["content_type"], "text/plain; charset=utf-8");
    assert_eq!(stored_files(&app).len(), 1);
    assert_eq!(
        get_as(&app, None, &download).await.text().await.unwrap(),
        "Plain notes.\n"
    );
    // A material without a file has nothing to download.
    let empty = material(
        &app,
        round,
        json!({"kind": "handout", "title": "Soon", "visibility": "public"}),
    )
    .await;
    assert_problem(
        get_as(
            &app,
            None,
            &format!("/api/v1/rounds/{round}/materials/{empty}/file"),
        )
        .await,
        404,
    )
    .await;
}

async fn an_upload_past_the_limit_is_413_and_leaves_no_file(app: TestApp) {
    let small = spawn_app_with(app.backend(), |settings| {
        settings.material_max_mb = 1;
    })
    .await
    .unwrap();
    let round = id_of(&small.round("2027-02-18", json!({})).await);
    let id = material(&small, round, json!({"kind": "slides", "title": "Slides"})).await;
    let path = small.url(&format!("/api/v1/rounds/{round}/materials/{id}/file"));
    let token = small.admin_token.clone().unwrap();

    // A client of their own: the server closes a connection whose body it stopped reading,
    // which must not be one the other requests reuse.
    let refused = reqwest::Client::new();
    // Said by Content-Length: refused before the body is read (a few bytes of it are sent).
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = small.address.trim_start_matches("http://").to_owned();
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "PUT /api/v1/rounds/{round}/materials/{id}/file HTTP/1.1\r\nHost: test\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n%PDF-1.7\n",
            1024 * 1024 + 1
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = socket.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Streamed without a length: refused once the limit is passed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = pdf(3 * 1024 * 1024)
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let streamed = refused
        .put(&path)
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    if let Ok(response) = streamed {
        // The server may close the connection before the client has sent everything; when an
        // answer comes, it is 413.
        assert_eq!(response.status(), 413);
    }
    assert!(
        stored_files(&small).is_empty(),
        "{:?}",
        stored_files(&small)
    );
    assert_eq!(
        small
            .get_ok(&format!("/api/v1/rounds/{round}/materials/{id}"))
            .await["file"],
        Value::Null
    );
    // Exactly the limit is accepted.
    assert_eq!(
        upload(&small, round, id, pdf(1024 * 1024)).await.status(),
        200
    );
    assert_eq!(stored_files(&small).len(), 1);
}

async fn an_upload_of_another_kind_is_415_and_leaves_no_file(app: TestApp) {
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let id = material(&app, round, json!({"kind": "slides", "title": "Slides"})).await;
    let mut zip = b"PK\x03\x04\x14\0\0\0\x08\0".to_vec();
    zip.extend(std::iter::repeat_n(0x41u8, 5000));
    for bytes in [
        b"GIF89a\x01\0\x01\0\x80\0\0".to_vec(),
        b"<!DOCTYPE html><html><body><script>alert(1)</script>".to_vec(),
        b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff".to_vec(),
        zip,
        Vec::new(),
    ] {
        let response = upload(&app, round, id, bytes.clone()).await;
        assert_problem(response, 415).await;
    }
    assert!(stored_files(&app).is_empty());
    // The bytes decide, not the Content-Type.
    let disguised = app
        .client
        .put(app.url(&format!("/api/v1/rounds/{round}/materials/{id}/file")))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("content-type", "application/pdf")
        .body(b"GIF89a\x01\0\x01\0".to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(disguised, 415).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    let accepted = upload(&app, round, id, png).await;
    assert_eq!(accepted.status(), 200);
    let shown: Value = accepted.json().await.unwrap();
    assert_eq!(shown["file"]["content_type"], "image/png");
    // A viewer may not upload.
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let refused = app
        .client
        .put(app.url(&format!("/api/v1/rounds/{round}/materials/{id}/file")))
        .bearer_auth(viewer)
        .body(pdf(100))
        .send()
        .await
        .unwrap();
    assert_problem(refused, 403).await;
}

async fn deleting_a_material_or_its_round_deletes_its_files(app: TestApp) {
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let first = material(&app, round, json!({"kind": "slides", "title": "One"})).await;
    let second = material(&app, round, json!({"kind": "handout", "title": "Two"})).await;
    assert_eq!(upload(&app, round, first, pdf(5000)).await.status(), 200);
    assert_eq!(upload(&app, round, second, pdf(6000)).await.status(), 200);
    assert_eq!(stored_files(&app).len(), 2);

    let gone = app
        .delete(&format!("/api/v1/rounds/{round}/materials/{first}"))
        .await;
    assert_eq!(gone.status(), 204);
    assert_eq!(stored_files(&app).len(), 1);
    assert_problem(
        app.get(&format!("/api/v1/rounds/{round}/materials/{first}"))
            .await,
        404,
    )
    .await;

    // The file alone, then the round with its last material.
    let third = material(&app, round, json!({"kind": "handout", "title": "Three"})).await;
    assert_eq!(upload(&app, round, third, pdf(7000)).await.status(), 200);
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{round}/materials/{third}/file"))
            .await
            .status(),
        204
    );
    assert_eq!(stored_files(&app).len(), 1);
    assert_eq!(
        app.get_ok(&format!("/api/v1/rounds/{round}/materials/{third}"))
            .await["file"],
        Value::Null
    );
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{round}"))
            .await
            .status(),
        204
    );
    assert!(stored_files(&app).is_empty());
    let audit = app.get_ok("/api/v1/audit?resource=material&limit=50").await;
    let deleted: Vec<i64> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "deleted")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(deleted.len(), 3, "{audit}");
    assert_problem(
        app.get(&format!("/api/v1/rounds/{round}/materials")).await,
        404,
    )
    .await;
}

async fn a_material_with_a_file_does_not_become_a_link(app: TestApp) {
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let id = material(&app, round, json!({"kind": "slides", "title": "Slides"})).await;
    assert_eq!(upload(&app, round, id, pdf(2000)).await.status(), 200);
    let path = format!("/api/v1/rounds/{round}/materials/{id}");
    let linked = app
        .patch(&path, &json!({"url": "https://example.org/slides"}))
        .await;
    assert_problem(linked, 409).await;
    let retitled = app.patch(&path, &json!({"title": "The slides"})).await;
    assert_eq!(retitled.status(), 200);
    let link = material(
        &app,
        round,
        json!({"kind": "link", "title": "Elsewhere", "url": "https://example.org/"}),
    )
    .await;
    assert_problem(upload(&app, round, link, pdf(2000)).await, 409).await;

    // An upload honours If-Match as every PUT does.
    let stale = app
        .client
        .put(app.url(&format!("/api/v1/rounds/{round}/materials/{id}/file")))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("if-match", "\"v1-p\"")
        .body(pdf(3000))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412).await;
    // A creation sent twice with one Idempotency-Key makes one material.
    let twice = |key: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/rounds/{round}/materials")))
            .bearer_auth(app.admin_token.as_deref().unwrap())
            .header("idempotency-key", key)
            .json(&json!({"kind": "handout", "title": "Once"}))
            .send()
    };
    let first = twice("material-once").await.unwrap();
    assert_eq!(first.status(), 201);
    let again = twice("material-once").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let (first, again): (Value, Value) = (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(first["id"], again["id"]);
    // A blank link is no link.
    let blank = app
        .post(
            &format!("/api/v1/rounds/{round}/materials"),
            &json!({"kind": "slides", "title": "Blank", "url": "  "}),
        )
        .await;
    assert_eq!(blank.status(), 201);
    let blank: Value = blank.json().await.unwrap();
    assert_eq!(blank["url"], Value::Null);
}

async fn public_materials_are_linked_from_the_rounds_calendar_event(app: TestApp) {
    let round = id_of(
        &app.round("2027-02-18", json!({"title": "Patient comments"}))
            .await,
    );
    material(
        &app,
        round,
        json!({"kind": "article", "title": "The article", "url": "https://example.org/article", "visibility": "public"}),
    )
    .await;
    material(
        &app,
        round,
        json!({"kind": "recording", "title": "Staff recording", "url": "https://example.org/staff-only", "visibility": "staff"}),
    )
    .await;
    let ics = get_as(&app, None, &format!("/api/v1/rounds/{round}.ics"))
        .await
        .text()
        .await
        .unwrap()
        .replace("\r\n ", "");
    assert!(
        ics.contains("ATTACH:https://example.org/article\r\n"),
        "{ics}"
    );
    assert!(ics.contains("The article (article)"), "{ics}");
    assert!(!ics.contains("staff-only"), "{ics}");
}

/// PostgreSQL has no default place for files: without `LHS_MATERIALS_URL` links work and an
/// upload is refused, naming the setting, with nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_without_a_file_store_uploads_are_refused_naming_the_setting() {
    let Some(app) = spawn_app_with(crate::helpers::Backend::Postgres, |settings| {
        settings.materials_url = None;
    })
    .await
    else {
        return;
    };
    let round = id_of(&app.round("2027-02-18", json!({})).await);
    let link = material(
        &app,
        round,
        json!({"kind": "link", "title": "Elsewhere", "url": "https://example.org/"}),
    )
    .await;
    assert_eq!(
        app.get_ok(&format!("/api/v1/rounds/{round}/materials/{link}"))
            .await["url"],
        "https://example.org/"
    );
    let pending = material(&app, round, json!({"kind": "slides", "title": "Slides"})).await;
    let refused = assert_problem(upload(&app, round, pending, pdf(1000)).await, 409).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("LHS_MATERIALS_URL"),
        "{refused}"
    );
}
