//! A real OpenID Connect provider for the tests: `oauth2-mock-server` (npm), started by
//! `tests/oidc/server.mjs` with node from PATH, shaped like a Keycloak realm
//! (`/realms/hospital`, its JWKS at `/protocol/openid-connect/certs`). Missing node or a missing
//! package is a failure naming the command that fixes it, never a skipped test.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

pub fn mock_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

pub struct Provider {
    child: Child,
    // Held so that the provider ends when this does (it exits when its stdin closes).
    _stdin: ChildStdin,
    /// `http://127.0.0.1:<port>/realms/hospital`, exactly as its discovery document says.
    pub issuer: String,
    control: String,
    /// The key the provider signs with at start (RS256).
    pub first_kid: String,
    http: reqwest::Client,
}

impl Provider {
    pub fn start() -> Provider {
        let dir = mock_dir();
        assert!(
            dir.join("node_modules/oauth2-mock-server/package.json")
                .exists(),
            "oauth2-mock-server is not installed: run `npm ci` in {} (scripts/test does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20.19 or later on PATH): {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        let ready: Value = match serde_json::from_str(&line) {
            Ok(ready) => ready,
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                panic!("the mock identity provider did not start: {line}\n{stderr}");
            }
        };
        let http = reqwest::Client::builder()
            // Each test has its own runtime: no pooled connection may outlive it.
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Provider {
            child,
            _stdin: stdin,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            control: ready["control"].as_str().expect("control").to_owned(),
            first_kid: ready["kid"].as_str().expect("kid").to_owned(),
            http,
        }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        let after_scheme = self.issuer.trim_start_matches("http://");
        let host = after_scheme.split('/').next().expect("a host");
        format!("http://{host}")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .expect("the mock's control API answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("control JSON");
        assert!(status.is_success(), "{path}: {answer}");
        answer
    }

    /// A token signed by the provider: `iss`, `iat`, `exp` (1 h) and `nbf` from the package,
    /// with `sub` and then `body` (`claims`, `header`, `kid`, `exp_in`, `nbf_in`) on top; a
    /// `null` claim or header entry removes it.
    pub async fn mint(&self, body: Value) -> String {
        let mut body = body;
        let claims = body
            .as_object_mut()
            .expect("object")
            .entry("claims")
            .or_insert_with(|| json!({}));
        if claims.get("sub").is_none() {
            claims["sub"] = json!("user-1");
        }
        self.call(reqwest::Method::POST, "/mint", body).await["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// The claims of the access tokens the authorization code flow answers with from now on:
    /// who signs in to the pages.
    pub async fn signin_claims(&self, claims: Value) {
        self.call(
            reqwest::Method::POST,
            "/signin-claims",
            json!({ "claims": claims }),
        )
        .await;
    }

    pub async fn mint_claims(&self, claims: Value) -> String {
        self.mint(json!({ "claims": claims })).await
    }

    /// Generates a key that signs from now on; its kid.
    pub async fn add_key(&self, alg: &str) -> String {
        self.call(reqwest::Method::POST, "/keys", json!({ "alg": alg }))
            .await["kid"]
            .as_str()
            .expect("kid")
            .to_owned()
    }

    /// A new key signs, the old one is removed from the JWKS: (old kid, new kid).
    pub async fn rotate(&self, alg: &str) -> (String, String) {
        let answer = self
            .call(reqwest::Method::POST, "/rotate", json!({ "alg": alg }))
            .await;
        (
            answer["old"].as_str().expect("old").to_owned(),
            answer["new"].as_str().expect("new").to_owned(),
        )
    }

    pub async fn public_pem(&self, kid: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/public-pem/{kid}"),
            json!({}),
        )
        .await["pem"]
            .as_str()
            .expect("pem")
            .to_owned()
    }

    pub async fn jwks_fetches(&self) -> u64 {
        self.call(reqwest::Method::GET, "/stats", json!({})).await["jwks"]
            .as_u64()
            .expect("count")
    }

    pub async fn discovery_fetches(&self) -> u64 {
        self.call(reqwest::Method::GET, "/stats", json!({})).await["discovery"]
            .as_u64()
            .expect("count")
    }

    pub async fn reset_stats(&self) {
        self.call(reqwest::Method::POST, "/stats/reset", json!({}))
            .await;
    }

    /// Stops serving the provider's port (an outage).
    pub async fn down(&self) {
        self.call(reqwest::Method::POST, "/down", json!({})).await;
    }

    pub async fn up(&self) {
        self.call(reqwest::Method::POST, "/up", json!({})).await;
    }

    pub async fn cache_control(&self, value: Option<&str>) {
        self.call(
            reqwest::Method::POST,
            "/cache-control",
            json!({ "value": value }),
        )
        .await;
    }

    /// The provider answers only after `ms` (a hung provider).
    pub async fn delay(&self, ms: u64) {
        self.call(reqwest::Method::POST, "/delay", json!({ "ms": ms }))
            .await;
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with its header replaced (its signature no longer matches; the checks that come
/// before the signature are what such a token tests).
pub fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("a JWT");
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

/// A random key id, as a forger would make up.
pub fn random_kid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
