use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lhs_rounds::platform::auth::{Auth, Role};
use lhs_rounds::platform::config::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{id_of, spawn_app, spawn_app_with, Backend, TestApp, SECRET};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn admin_claims() -> Value {
    json!({"sub": "mallory@example.org", "roles": ["admin"], "exp": now() + 600})
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Asserts 401 with a Bearer challenge that says the token was refused.
async fn assert_refused(app: &TestApp, authorization: &str) {
    for (method, path, body) in [
        (Method::GET, "/api/v1/rounds", None),
        (
            Method::POST,
            "/api/v1/departments",
            Some(json!({"name": "Forged"})),
        ),
    ] {
        let mut request = app
            .client
            .request(method.clone(), app.url(path))
            .header("authorization", authorization);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            401,
            "{method} {path} with {authorization}"
        );
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 401);
    }
    assert_eq!(
        app.get_ok("/api/v1/departments").await["total"],
        0,
        "nothing was written"
    );
}

/// A key pair made with openssl: (private key PEM, public key PEM file, its directory).
fn key_pair(algorithm: &str) -> (Vec<u8>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.pem");
    let public = dir.path().join("public.pem");
    let options: &[&str] = match algorithm {
        "RSA" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .arg("-out")
        .arg(&private)
        .status()
        .expect("openssl");
    assert!(made.success());
    let exported = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(exported.success());
    (std::fs::read(&private).unwrap(), public, dir)
}

async fn app_with_public_key(algorithm: &str) -> (TestApp, Vec<u8>, PathBuf, tempfile::TempDir) {
    let (private, public, dir) = key_pair(algorithm);
    let key_path = public.clone();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.jwt_secret = None;
        s.jwt_public_key = Some(key_path);
    })
    .await
    .unwrap();
    (app, private, public, dir)
}

// ---- forged and stale tokens: each one is 401 ----------------------------------------------

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_refused_but_one_within_it_is_not() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let expired = hs256(
        &json!({"sub": "a", "roles": ["admin"], "exp": now() - 120}),
        SECRET.as_bytes(),
    );
    let within_leeway = hs256(
        &json!({"sub": "a", "roles": ["admin"], "exp": now() - 5}),
        SECRET.as_bytes(),
    );

    assert_refused(&app, &format!("Bearer {expired}")).await;
    let accepted = app
        .request_as(Some(&within_leeway), Method::GET, "/api/v1/feedback", None)
        .await;
    assert_eq!(accepted.status(), 200);
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let early = hs256(
        &json!({"sub": "a", "roles": ["admin"], "exp": now() + 900, "nbf": now() + 300}),
        SECRET.as_bytes(),
    );
    assert_refused(&app, &format!("Bearer {early}")).await;
}

#[tokio::test]
async fn a_token_with_a_bad_signature_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let forged = hs256(
        &admin_claims(),
        b"another-secret-of-at-least-thirty-two-bytes",
    );
    assert_refused(&app, &format!("Bearer {forged}")).await;
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_rs256_configuration() {
    let (app, _private, _public, _dir) = app_with_public_key("RSA").await;
    assert_refused(
        &app,
        &format!("Bearer {}", hs256(&admin_claims(), SECRET.as_bytes())),
    )
    .await;
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    let (app, _private, public, _dir) = app_with_public_key("RSA").await;
    let public_pem = std::fs::read(public).unwrap();
    assert_refused(
        &app,
        &format!("Bearer {}", hs256(&admin_claims(), &public_pem)),
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_token_with_alg_none_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(admin_claims().to_string().as_bytes());
    assert_refused(&app, &format!("Bearer {header}.{payload}.")).await;
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let token = hs256(&json!({"sub": "a", "roles": ["admin"]}), SECRET.as_bytes());
    assert_refused(&app, &format!("Bearer {token}")).await;
}

#[tokio::test]
async fn a_token_with_exp_as_a_string_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let token = hs256(
        &json!({"sub": "a", "roles": ["admin"], "exp": (now() + 600).to_string()}),
        SECRET.as_bytes(),
    );
    assert_refused(&app, &format!("Bearer {token}")).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jwt_issuer = Some("https://idp.hospital.example".into())
    })
    .await
    .unwrap();
    let mut claims = admin_claims();
    claims["iss"] = json!("https://evil.example");
    assert_refused(
        &app,
        &format!("Bearer {}", hs256(&claims, SECRET.as_bytes())),
    )
    .await;
    let missing = hs256(&admin_claims(), SECRET.as_bytes());
    assert_refused(&app, &format!("Bearer {missing}")).await;

    claims["iss"] = json!("https://idp.hospital.example");
    let good = hs256(&claims, SECRET.as_bytes());
    assert_eq!(
        app.request_as(Some(&good), Method::GET, "/api/v1/feedback", None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jwt_audience = Some("lhs-rounds".into())
    })
    .await
    .unwrap();
    let mut claims = admin_claims();
    claims["aud"] = json!("billing");
    assert_refused(
        &app,
        &format!("Bearer {}", hs256(&claims, SECRET.as_bytes())),
    )
    .await;

    claims["aud"] = json!("lhs-rounds");
    let good = hs256(&claims, SECRET.as_bytes());
    assert_eq!(
        app.request_as(Some(&good), Method::GET, "/api/v1/feedback", None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_malformed_authorization_header_or_token_header_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let good = hs256(&admin_claims(), SECRET.as_bytes());
    let (_, rest) = good.split_once('.').unwrap();

    assert_refused(&app, &format!("Basic {}", b64(b"admin:admin"))).await;
    assert_refused(&app, &format!("Bearer {}.{rest}", b64(b"{not json"))).await;
}

#[tokio::test]
async fn an_empty_bearer_token_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    assert_refused(&app, "Bearer").await;
    assert_refused(&app, "Bearer    ").await;
}

#[tokio::test]
async fn a_bearer_token_that_is_not_a_jwt_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    assert_refused(&app, "Bearer hello").await;
    assert_refused(&app, "Bearer a.b.c").await;
}

// ---- identity providers: RS256 and ES256 -----------------------------------------------------

#[tokio::test]
async fn tokens_signed_by_an_rs256_or_es256_identity_provider_are_accepted() {
    for (algorithm, jwt_algorithm) in [("RSA", Algorithm::RS256), ("EC", Algorithm::ES256)] {
        let (app, private, _public, _dir) = app_with_public_key(algorithm).await;
        let key = match jwt_algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&private).unwrap(),
            _ => EncodingKey::from_ec_pem(&private).unwrap(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(jwt_algorithm), &admin_claims(), &key).unwrap();

        let created = app
            .request_as(
                Some(&token),
                Method::POST,
                "/api/v1/departments",
                Some(&json!({"name": "Clinical Informatics"})),
            )
            .await;

        assert_eq!(created.status(), 201, "{algorithm}");
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["created_by"], "mallory@example.org");
        let forged = hs256(&admin_claims(), SECRET.as_bytes());
        assert_eq!(
            app.request_as(Some(&forged), Method::GET, "/api/v1/rounds", None)
                .await
                .status(),
            401
        );
    }
}

// ---- who may do what ------------------------------------------------------------------------

// Every operation against the role table, without a token and with each role: see
// `authorization::every_operation_is_authorized_before_anything_else`.
on_both_backends!(
    private_fields_are_shown_to_organisers_only,
    an_aud_array_must_contain_the_audience
);

async fn private_fields_are_shown_to_organisers_only(app: TestApp) {
    let organizer = app.token("olga@example.org", &[Role::Organizer]);
    let viewer = app.token("vera@example.org", &[Role::Viewer]);
    let created: Value = app
        .request_as(
            Some(&organizer),
            Method::POST,
            "/api/v1/speakers",
            Some(&json!({"full_name": "Tara Lagu", "email": "tara@example.org"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/speakers/{}", id_of(&created));
    assert_eq!(created["created_by"], "olga@example.org");
    app.patch(&path, &json!({"title": "Professor"})).await;

    let as_organizer: Value = app
        .request_as(Some(&organizer), Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    let as_viewer: Value = app
        .request_as(Some(&viewer), Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    let as_anonymous: Value = app
        .request_as(None, Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(as_organizer["email"], "tara@example.org");
    assert_eq!(as_organizer["updated_by"], "admin@example.org");
    for hidden in [&as_viewer, &as_anonymous] {
        assert!(
            hidden.get("email").is_none()
                && hidden.get("created_by").is_none()
                && hidden.get("updated_by").is_none(),
            "{hidden}"
        );
        assert_eq!(hidden["display_name"], "Tara Lagu");
    }
    let listed: Value = app
        .request_as(None, Method::GET, "/api/v1/speakers", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["items"][0].get("email").is_none());

    let sent: Value = app
        .request_as(
            Some(&viewer),
            Method::POST,
            "/api/v1/feedback",
            Some(&json!({"kind": "general", "comment": "Thanks"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let read = app
        .get_ok(&format!("/api/v1/feedback/{}", id_of(&sent)))
        .await;
    assert_eq!(read["submitted_by"], "vera@example.org");
    assert!(
        sent.get("submitted_by").is_none(),
        "a viewer does not see it"
    );
}

// ---- settings ---------------------------------------------------------------------------------

#[tokio::test]
async fn reading_can_require_a_token() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.public_read = false)
        .await
        .unwrap();
    let viewer = app.token("vera@example.org", &[Role::Viewer]);

    assert_eq!(
        app.request_as(None, Method::GET, "/api/v1/rounds", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.request_as(Some(&viewer), Method::GET, "/api/v1/rounds", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.request_as(None, Method::GET, "/healthz", None)
            .await
            .status(),
        200,
        "probes stay open"
    );
}

#[tokio::test]
async fn anonymous_feedback_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.anonymous_feedback = false)
        .await
        .unwrap();
    let viewer = app.token("vera@example.org", &[Role::Viewer]);
    let body = json!({"kind": "general", "comment": "hello"});

    assert_eq!(
        app.request_as(None, Method::POST, "/api/v1/feedback", Some(&body))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.request_as(Some(&viewer), Method::POST, "/api/v1/feedback", Some(&body))
            .await
            .status(),
        201
    );
}

#[test]
fn a_short_secret_or_postgres_without_a_key_refuses_to_start() {
    let mut short = Settings::for_database("/tmp/unused.db");
    short.jwt_secret = Some("too short".into());
    let postgres = Settings::for_database("postgres://lhs@127.0.0.1/lhs");

    let short_error = Auth::from_settings(&short).err().unwrap();
    let postgres_error = Auth::from_settings(&postgres).err().unwrap();

    assert!(short_error.contains("at least 32 bytes"), "{short_error}");
    assert!(
        postgres_error.contains("LHS_JWT_SECRET") && postgres_error.contains("LHS_JWT_PUBLIC_KEY"),
        "{postgres_error}"
    );
}

#[tokio::test]
async fn without_a_key_sqlite_creates_a_private_secret_that_minted_tokens_share() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir
        .path()
        .join("lhs-rounds.db")
        .to_string_lossy()
        .into_owned();
    let minted = Command::new(env!("CARGO_BIN_EXE_lhs-rounds"))
        .args([
            "token",
            "--sub",
            "alice@example.org",
            "--role",
            "organizer",
            "--ttl",
            "8h",
            "--database-url",
            &database,
        ])
        .env_remove("LHS_JWT_SECRET")
        .env_remove("LHS_JWT_PUBLIC_KEY")
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();

    let secret_file = lhs_rounds::platform::auth::secret_file(&database);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let db_for_app = database.clone();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.jwt_secret = None;
        s.database_url = db_for_app;
    })
    .await
    .unwrap();
    let created = app
        .request_as(
            Some(&token),
            Method::POST,
            "/api/v1/speakers",
            Some(&json!({"full_name": "Alice"})),
        )
        .await;
    assert_eq!(
        created.status(),
        201,
        "the service reuses the secret the token was minted with"
    );
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["created_by"], "alice@example.org");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert!(secret.trim().len() >= 64 && !token.contains(secret.trim()));
}

/// Run from a directory without a database, `lhs-rounds token` makes a secret there that no
/// server uses: it must say so, and otherwise name the secret it signed with.
#[test]
fn the_token_command_names_its_secret_and_warns_when_it_created_one() {
    let dir = tempfile::tempdir().unwrap();
    // The default database is relative to the child's current directory, which the child sees
    // canonicalised.
    let secret_file = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("lhs-rounds.db.jwt-secret");
    let stderr_of_token = |secret: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lhs-rounds"));
        command
            .args(["token", "--sub", "alice@example.org", "--role", "viewer"])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("LHS_JWT_PUBLIC_KEY")
            // What it says must not depend on the log level.
            .env("RUST_LOG", "off");
        match secret {
            Some(secret) => command.env("LHS_JWT_SECRET", secret),
            None => command.env_remove("LHS_JWT_SECRET"),
        };
        let output = command.output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{stderr}");
        assert!(!output.stdout.is_empty(), "no token on stdout");
        stderr
    };

    assert_eq!(
        stderr_of_token(None),
        format!(
            "warning: created a new token secret at {}; a server using another database will \
             not accept this token\n",
            secret_file.display()
        )
    );
    assert!(secret_file.is_file());
    assert_eq!(
        stderr_of_token(None),
        format!(
            "lhs-rounds token: signed with the secret in {}\n",
            secret_file.display()
        )
    );
    assert_eq!(
        stderr_of_token(Some(SECRET)),
        "lhs-rounds token: signed with LHS_JWT_SECRET\n"
    );
}

/// RFC 7519 allows `aud` as an array, and Keycloak-style providers send one
/// (`["lhs-rounds","account"]`): the shared-secret and PEM modes take it when it contains the
/// audience.
async fn an_aud_array_must_contain_the_audience(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.jwt_audience = Some("lhs-rounds".into())
    })
    .await
    .unwrap();
    let mut claims = admin_claims();
    for (aud, status) in [
        (json!(["lhs-rounds", "account"]), 200),
        (json!(["account", "lhs-rounds"]), 200),
        (json!("lhs-rounds"), 200),
        (json!(["account", "billing"]), 401),
        (json!([]), 401),
        (json!("account"), 401),
    ] {
        claims["aud"] = aud.clone();
        let token = hs256(&claims, SECRET.as_bytes());
        assert_eq!(
            app.request_as(Some(&token), Method::GET, "/api/v1/feedback", None)
                .await
                .status(),
            status,
            "{aud}"
        );
    }
    // The minted token, with the audience as a string, still passes.
    assert_eq!(app.get("/api/v1/feedback").await.status(), 200);
}

#[test]
fn two_token_modes_at_once_stop_start_up_naming_both() {
    let issuer = "https://login.example.org/realms/hospital";
    let mut both = Settings::for_database("/tmp/unused.db");
    both.jwt_secret = Some(SECRET.into());
    both.oidc_issuer = Some(issuer.into());
    let error = Auth::from_settings(&both).err().unwrap();
    assert!(
        error.contains("LHS_OIDC_ISSUER") && error.contains("LHS_JWT_SECRET"),
        "{error}"
    );

    let mut pem = Settings::for_database("/tmp/unused.db");
    pem.jwt_public_key = Some("/tmp/unused.pem".into());
    pem.oidc_issuer = Some(issuer.into());
    let error = Auth::from_settings(&pem).err().unwrap();
    assert!(
        error.contains("LHS_OIDC_ISSUER") && error.contains("LHS_JWT_PUBLIC_KEY"),
        "{error}"
    );

    let mut key_and_secret = Settings::for_database("/tmp/unused.db");
    key_and_secret.jwt_public_key = Some("/tmp/unused.pem".into());
    key_and_secret.jwt_secret = Some(SECRET.into());
    let error = Auth::from_settings(&key_and_secret).err().unwrap();
    assert!(
        error.contains("LHS_JWT_SECRET") && error.contains("LHS_JWT_PUBLIC_KEY"),
        "{error}"
    );

    // An empty value (`LHS_JWT_SECRET=` in a compose file) sets no mode.
    let mut empty_secret = both.clone();
    empty_secret.jwt_secret = Some(String::new());
    assert_eq!(
        Auth::oidc_settings(&empty_secret)
            .unwrap()
            .map(|oidc| oidc.issuer),
        Some(issuer.to_owned())
    );

    let mut all = both.clone();
    all.jwt_public_key = Some("/tmp/unused.pem".into());
    let error = Auth::from_settings(&all).err().unwrap();
    for name in ["LHS_OIDC_ISSUER", "LHS_JWT_SECRET", "LHS_JWT_PUBLIC_KEY"] {
        assert!(error.contains(name), "{error}");
    }
}
