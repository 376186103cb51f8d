//! Sign-in with the hospital's identity provider (OpenID Connect), against a real provider no
//! one here wrote: `oauth2-mock-server`, shaped like a Keycloak realm (tests/oidc/server.mjs).
//! The settings of each test are the ones docs/identity-provider.md gives for Keycloak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lhs_rounds::platform::auth::oidc::{OidcSettings, Verifier, VerifyError};
use lhs_rounds::platform::config::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, logs, spawn_app_with, Backend, TestApp};

#[path = "../common/oidc.rs"]
mod provider;
use provider::{b64, random_kid, with_header, Provider};

/// The Keycloak settings of docs/identity-provider.md.
const AUDIENCE: &str = "lhs-rounds";
const ROLE_MAP: &str = "LHS-Rounds-Admins=admin,LHS-Rounds-Organizers=organizer";

/// An application checking tokens with `provider`'s keys, refreshed at most every second, and
/// with refused tokens not rate-limited (the tests send many on purpose).
async fn oidc_app(
    backend: Backend,
    provider: &Provider,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let issuer = provider.issuer.clone();
    spawn_app_with(backend, move |s| {
        s.jwt_secret = None;
        s.oidc_issuer = Some(issuer);
        s.oidc_refresh_min = Some(Duration::from_secs(1).into());
        s.auth_failure_rate_limit = "100000/minute".to_owned();
        configure(s);
    })
    .await
    .expect("the backend of the test's first app is available")
}

/// The Keycloak realm-role settings: audience, `realm_access.roles`, the role map.
fn keycloak(s: &mut Settings) {
    s.jwt_audience = Some(AUDIENCE.to_owned());
    s.oidc_roles_claim = Some("realm_access.roles".to_owned());
    s.oidc_role_map = Some(ROLE_MAP.to_owned());
}

/// The claims Keycloak 26 puts in an access token for a client with an audience mapper.
fn keycloak_claims(sub: &str, realm_roles: Value) -> Value {
    json!({
        "sub": sub,
        "aud": ["lhs-rounds", "account"],
        "azp": "lhs-rounds-docs",
        "typ": "Bearer",
        "scope": "openid profile email",
        "preferred_username": "jdoe",
        "name": "Jane Doe",
        "email": "jane.doe@example.org",
        "email_verified": true,
        "realm_access": {"roles": realm_roles},
        "resource_access": {"account": {"roles": ["manage-account"]}},
    })
}

async fn me(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let response = app.request_as(token, Method::GET, "/api/v1/me", None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn status_of(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    app.request_as(Some(token), method, path, body.as_ref())
        .await
        .status()
        .as_u16()
}

/// Retries `token` on `path` until it is 200 (at most 15 s), returning how it ended.
async fn eventually_ok(app: &TestApp, token: &str, path: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = status_of(app, token, Method::GET, path, None).await;
        if status == 200 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both_backends!(
    oidc_roles_come_from_each_claim_through_the_role_map,
    oidc_aud_may_be_a_string_or_an_array,
    oidc_a_key_rotation_mid_run_needs_no_restart,
    oidc_a_thousand_unknown_kids_cost_at_most_one_fetch_per_interval,
    oidc_an_outage_keeps_cached_keys_answers_503_without_them_and_recovers,
    oidc_forged_tokens_are_refused_and_only_the_reason_is_logged,
    oidc_me_says_who_the_token_says,
    oidc_the_api_docs_sign_in_with_the_provider_when_configured,
    oidc_rs256_ps256_es256_and_at_jwt_tokens_are_accepted,
    oidc_pages_sign_in_with_code_and_pkce_into_a_session_cookie,
    oidc_without_a_client_id_the_pages_are_public_only,
    oidc_sign_ins_started_are_limited_per_client_and_read_discovery_once,
    oidc_a_schedule_not_public_is_read_on_the_pages_signed_in,
);

async fn oidc_roles_come_from_each_claim_through_the_role_map(app: TestApp) {
    let provider = Provider::start();
    let backend = app.backend();
    drop(app);

    // Keycloak realm roles, through the map: the highest mapped role wins, an unmapped person
    // is a viewer.
    let realm = oidc_app(backend, &provider, keycloak).await;
    for (roles, expected) in [
        (
            json!(["offline_access", "LHS-Rounds-Organizers"]),
            json!("organizer"),
        ),
        (
            json!([
                "LHS-Rounds-Organizers",
                "LHS-Rounds-Admins",
                "uma_authorization"
            ]),
            json!("admin"),
        ),
        (json!("LHS-Rounds-Admins"), json!("admin")),
        (json!(["offline_access"]), json!("viewer")),
        // With a map, a provider role literally called `admin` grants nothing by itself.
        (json!(["admin"]), json!("viewer")),
    ] {
        let token = provider
            .mint_claims(keycloak_claims("kc-user", roles.clone()))
            .await;
        let (status, body) = me(&realm, Some(&token)).await;
        assert_eq!(status, 200, "{roles}: {body}");
        assert_eq!(body["role"], expected, "{roles}");
    }
    // The role is what authorizes: an organizer writes speakers, a viewer may not, only an
    // admin writes departments; the writer's `sub` is recorded.
    let organizer = provider
        .mint_claims(keycloak_claims("kc-olga", json!(["LHS-Rounds-Organizers"])))
        .await;
    let viewer = provider
        .mint_claims(keycloak_claims("kc-vera", json!([])))
        .await;
    let admin = provider
        .mint_claims(keycloak_claims("kc-adam", json!(["LHS-Rounds-Admins"])))
        .await;
    let created = realm
        .request_as(
            Some(&organizer),
            Method::POST,
            "/api/v1/speakers",
            Some(&json!({"full_name": "Tara Lagu"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["created_by"], "kc-olga");
    let speaker = json!({"full_name": "Someone"});
    assert_eq!(
        status_of(
            &realm,
            &viewer,
            Method::POST,
            "/api/v1/speakers",
            Some(speaker)
        )
        .await,
        403
    );
    let unit = json!({"name": "Clinical Informatics"});
    assert_eq!(
        status_of(
            &realm,
            &organizer,
            Method::POST,
            "/api/v1/departments",
            Some(unit.clone())
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &realm,
            &admin,
            Method::POST,
            "/api/v1/departments",
            Some(unit)
        )
        .await,
        201
    );
    let audit = realm
        .request_as(
            Some(&admin),
            Method::GET,
            "/api/v1/audit?resource=speaker",
            None,
        )
        .await;
    assert_eq!(audit.status(), 200);
    let audit: Value = audit.json().await.unwrap();
    assert_eq!(audit["items"][0]["actor"], "kc-olga", "{audit}");
    drop(realm);

    // Groups (Keycloak's group mapper, Okta's groups claim): a string or an array.
    let groups = oidc_app(backend, &provider, |s| {
        s.oidc_roles_claim = Some("groups".to_owned());
        s.oidc_role_map = Some(ROLE_MAP.to_owned());
    })
    .await;
    for (claim, expected) in [
        (json!("LHS-Rounds-Organizers"), json!("organizer")),
        (json!(["Nurses", "LHS-Rounds-Admins"]), json!("admin")),
        (json!(["Nurses", 7, null]), json!("viewer")),
    ] {
        let token = provider.mint_claims(json!({ "groups": claim })).await;
        assert_eq!(
            me(&groups, Some(&token)).await.1["role"],
            expected,
            "{claim}"
        );
    }
    drop(groups);

    // Keycloak client roles under a client id with a hyphen; another client's roles are not read.
    let client = oidc_app(backend, &provider, |s| {
        s.oidc_roles_claim = Some("resource_access.lhs-rounds.roles".to_owned());
        s.oidc_role_map = Some(ROLE_MAP.to_owned());
    })
    .await;
    for (roles, expected) in [
        (json!(["LHS-Rounds-Organizers"]), json!("organizer")),
        (json!([]), json!("viewer")),
    ] {
        let token = provider
            .mint_claims(json!({"resource_access": {
                "lhs-rounds": {"roles": roles},
                "account": {"roles": ["LHS-Rounds-Admins"]},
            }}))
            .await;
        assert_eq!(
            me(&client, Some(&token)).await.1["role"],
            expected,
            "{roles}"
        );
    }
    drop(client);

    // No map: the service's own role names in `roles`, as the shared-secret mode reads them.
    let literal = oidc_app(backend, &provider, |_| {}).await;
    for (roles, expected) in [
        (json!(["viewer", "admin"]), json!("admin")),
        (json!("organizer"), json!("organizer")),
        (json!(["Admin"]), json!("viewer")),
    ] {
        let token = provider.mint_claims(json!({ "roles": roles })).await;
        assert_eq!(
            me(&literal, Some(&token)).await.1["role"],
            expected,
            "{roles}"
        );
    }
    drop(literal);

    // LHS_OIDC_DEFAULT_ROLE=none: a person in no mapped group is signed in, with no role.
    let strict = oidc_app(backend, &provider, |s| {
        keycloak(s);
        s.oidc_default_role = Some("none".to_owned());
    })
    .await;
    let nobody = provider
        .mint_claims(keycloak_claims("kc-nobody", json!(["offline_access"])))
        .await;
    let (status, body) = me(&strict, Some(&nobody)).await;
    assert_eq!(status, 200);
    assert_eq!(body["role"], Value::Null);
    assert_eq!(body["sub"], "kc-nobody");
    assert_eq!(
        status_of(&strict, &nobody, Method::GET, "/api/v1/rounds", None).await,
        200,
        "public reads stay open"
    );
    let refused = strict
        .request_as(Some(&nobody), Method::GET, "/api/v1/feedback", None)
        .await;
    assert_problem(refused, 403).await;
}

async fn oidc_aud_may_be_a_string_or_an_array(app: TestApp) {
    let provider = Provider::start();
    let app = oidc_app(app.backend(), &provider, keycloak).await;
    for aud in [
        json!("lhs-rounds"),
        json!(["lhs-rounds", "account"]),
        json!(["account", "lhs-rounds"]),
    ] {
        let token = provider.mint_claims(json!({ "aud": aud })).await;
        let (status, body) = me(&app, Some(&token)).await;
        assert_eq!(status, 200, "{aud}: {body}");
    }
    for aud in [
        json!("account"),
        json!(["account", "lhs-rounds-docs"]),
        json!([]),
        Value::Null,
    ] {
        let token = provider.mint_claims(json!({ "aud": aud })).await;
        let response = app
            .request_as(Some(&token), Method::GET, "/api/v1/me", None)
            .await;
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem = assert_problem(response, 401).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("another audience") || detail.contains("no aud claim"),
            "{aud}: {detail}"
        );
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }

    // Without LHS_JWT_AUDIENCE, any audience (or none) is accepted.
    let open = oidc_app(app.backend(), &provider, |_| {}).await;
    for claims in [
        json!({"aud": "anything"}),
        json!({"aud": ["a", "b"]}),
        json!({}),
    ] {
        let token = provider.mint_claims(claims.clone()).await;
        assert_eq!(me(&open, Some(&token)).await.0, 200, "{claims}");
    }
}

async fn oidc_a_key_rotation_mid_run_needs_no_restart(app: TestApp) {
    let provider = Provider::start();
    let app = oidc_app(app.backend(), &provider, |_| {}).await;
    let old_token = provider.mint_claims(json!({"roles": ["organizer"]})).await;
    assert_eq!(me(&app, Some(&old_token)).await.0, 200);
    assert_eq!(provider.jwks_fetches().await, 1);

    // A new key (of another type, as a provider moving to ES256 would) signs, and the old one
    // is removed from the JWKS.
    let (old, new) = provider.rotate("ES256").await;
    assert_eq!(old, provider.first_kid);
    assert_ne!(old, new);
    let new_token = provider.mint_claims(json!({"roles": ["organizer"]})).await;
    // Past the refresh interval since the start-up fetch, the unknown kid may fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = me(&app, Some(&new_token)).await;
    assert_eq!(
        status, 200,
        "the new key's token, without a restart: {body}"
    );
    assert_eq!(body["role"], "organizer");
    assert_eq!(provider.jwks_fetches().await, 2);

    // The refresh replaced the keys: the removed key's tokens are refused now.
    let refused = app
        .request_as(Some(&old_token), Method::GET, "/api/v1/me", None)
        .await;
    let problem = assert_problem(refused, 401).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not among the identity provider's keys"),
        "{problem}"
    );
    // And the new one keeps working from the cache.
    assert_eq!(me(&app, Some(&new_token)).await.0, 200);
    assert_eq!(provider.jwks_fetches().await, 2);
}

async fn oidc_a_thousand_unknown_kids_cost_at_most_one_fetch_per_interval(app: TestApp) {
    let provider = Provider::start();
    let refresh = Duration::from_secs(2);
    let app = Arc::new(
        oidc_app(app.backend(), &provider, |s| {
            s.oidc_refresh_min = Some(refresh.into());
        })
        .await,
    );
    let genuine = provider.mint_claims(json!({})).await;
    assert_eq!(me(&app, Some(&genuine)).await.0, 200);
    let forged: Vec<String> = (0..1000)
        .map(|_| {
            with_header(
                &genuine,
                &json!({"alg": "RS256", "kid": random_kid(), "typ": "JWT"}),
            )
        })
        .collect();

    // Let the gate open, then all of them, 64 at a time.
    tokio::time::sleep(refresh + Duration::from_millis(100)).await;
    provider.reset_stats().await;
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let mut requests = tokio::task::JoinSet::new();
    for token in forged {
        let (app, permits) = (app.clone(), permits.clone());
        requests.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let response = app
                .request_as(Some(&token), Method::GET, "/api/v1/rounds", None)
                .await;
            let status = response.status().as_u16();
            let problem: Value = response.json().await.unwrap();
            (
                status,
                problem["detail"].as_str().unwrap_or_default().to_owned(),
            )
        });
    }
    let answers = requests.join_all().await;
    let elapsed = started.elapsed();
    assert_eq!(answers.len(), 1000);
    for (status, detail) in &answers {
        assert_eq!(*status, 401, "{detail}");
        assert!(detail.contains("kid"), "{detail}");
    }
    let fetches = provider.jwks_fetches().await;
    let allowed = 1 + (elapsed.as_millis() / refresh.as_millis()) as u64;
    assert!(
        fetches >= 1 && fetches <= allowed,
        "{fetches} fetches in {elapsed:?} (at most {allowed})"
    );
    // The genuine token was cached all along.
    assert_eq!(me(&app, Some(&genuine)).await.0, 200);

    // Within the interval after a fetch the gate is shut: no fetch at all.
    provider.reset_stats().await;
    let token = with_header(&genuine, &json!({"alg": "RS256", "kid": random_kid()}));
    assert_eq!(me(&app, Some(&token)).await.0, 401);
    assert_eq!(provider.jwks_fetches().await, 0);
}

async fn oidc_an_outage_keeps_cached_keys_answers_503_without_them_and_recovers(app: TestApp) {
    let provider = Provider::start();
    let backend = app.backend();
    let warm = oidc_app(backend, &provider, |_| {}).await;
    let token = provider.mint_claims(json!({"roles": ["organizer"]})).await;
    assert_eq!(me(&warm, Some(&token)).await.0, 200);

    provider.down().await;
    // A cached key needs no network: it works, at once.
    let began = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            status_of(&warm, &token, Method::GET, "/api/v1/feedback", None).await,
            200
        );
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );

    // A service that starts during the outage starts all the same: ready, serving anonymous
    // reads, and answering a token it cannot check with 503.
    let cold = oidc_app(backend, &provider, |_| {}).await;
    assert_eq!(
        cold.client
            .get(cold.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let rounds = cold
        .request_as(None, Method::GET, "/api/v1/rounds", None)
        .await;
    assert_eq!(rounds.status(), 200);
    let unavailable = cold
        .request_as(Some(&token), Method::GET, "/api/v1/rounds", None)
        .await;
    assert!(unavailable.headers().contains_key("retry-after"));
    let problem = assert_problem(unavailable, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("identity provider can't be reached"),
        "{problem}"
    );
    assert_eq!(
        cold.client
            .get(cold.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A key the warm service lacks cannot be asked about: 503, not 401.
    let new_kid = provider.add_key("RS256").await;
    let new_token = provider.mint(json!({ "kid": new_kid })).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unavailable = warm
        .request_as(Some(&new_token), Method::GET, "/api/v1/me", None)
        .await;
    assert_problem(unavailable, 503).await;
    assert_eq!(
        me(&warm, Some(&token)).await.0,
        200,
        "the cached key still works"
    );

    // Back: both recover by themselves (a failed fetch is retried every refresh interval).
    provider.up().await;
    assert_eq!(eventually_ok(&cold, &token, "/api/v1/me").await, 200);
    assert_eq!(eventually_ok(&warm, &new_token, "/api/v1/me").await, 200);
}

/// An RSA key of another provider, made by openssl.
fn foreign_rsa_key() -> EncodingKey {
    let output = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl on PATH");
    assert!(output.status.success(), "openssl genpkey failed");
    EncodingKey::from_rsa_pem(&output.stdout).expect("a PEM private key")
}

async fn oidc_forged_tokens_are_refused_and_only_the_reason_is_logged(app: TestApp) {
    logs::capture();
    let provider = Provider::start();
    let app = oidc_app(app.backend(), &provider, |s| {
        keycloak(s);
        // Long enough that nothing below could refetch unnoticed.
        s.oidc_refresh_min = Some(Duration::from_secs(600).into());
    })
    .await;
    let kid = provider.first_kid.clone();
    // Values that must never reach a log line: the token's subject and claims.
    let marker = format!("mallory-{}", random_kid());
    let email = format!("{marker}@evil.example");
    let good = json!({"sub": marker, "email": email, "aud": AUDIENCE,
                      "realm_access": {"roles": ["LHS-Rounds-Admins"]}});
    let valid = provider.mint_claims(good.clone()).await;
    assert_eq!(me(&app, Some(&valid)).await.0, 200);

    let mut claims = good.clone();
    claims["iss"] = json!(provider.issuer);
    claims["exp"] = json!(jsonwebtoken::get_current_timestamp() + 600);
    let public_pem = provider.public_pem(&kid).await;
    let payload = valid.split('.').nth(1).unwrap().to_owned();
    let mut foreign_header = Header::new(Algorithm::RS256);
    foreign_header.kid = Some(kid.clone());
    let foreign = jsonwebtoken::encode(&foreign_header, &claims, &foreign_rsa_key()).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let tampered = {
        let mut more = claims.clone();
        more["realm_access"] = json!({"roles": ["LHS-Rounds-Admins", "x"]});
        let parts: Vec<&str> = valid.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(more.to_string().as_bytes()),
            parts[2]
        )
    };
    let with = |extra: Value| {
        let mut claims = good.clone();
        json_patch::merge(&mut claims, &extra);
        claims
    };

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(json!({"alg": "none", "kid": kid, "typ": "JWT"})
                    .to_string()
                    .as_bytes())
            ),
            "alg none",
        ),
        (
            "HS256 keyed with the provider's public key",
            hs256,
            "shared secret",
        ),
        (
            "the wrong iss",
            provider
                .mint_claims(with(
                    json!({"iss": "https://login.evil.example/realms/hospital"}),
                ))
                .await,
            "another issuer",
        ),
        (
            "the wrong aud",
            provider
                .mint_claims(with(json!({"aud": ["account", "lhs-rounds-docs"]})))
                .await,
            "another audience",
        ),
        (
            "expired",
            provider
                .mint(json!({"claims": good.clone(), "exp_in": -120}))
                .await,
            "expired",
        ),
        (
            "not yet valid",
            provider
                .mint(json!({"claims": good.clone(), "nbf_in": 120}))
                .await,
            "not valid yet",
        ),
        (
            "signed by another provider's key with a matching kid",
            foreign,
            "signature does not verify",
        ),
        (
            "a payload changed after signing",
            tampered,
            "signature does not verify",
        ),
        (
            "no kid",
            provider
                .mint(json!({"claims": good.clone(), "header": {"kid": null}}))
                .await,
            "no key (kid)",
        ),
    ];
    for (n, (what, token, reason)) in cases.iter().enumerate() {
        let id = format!("{}forged-{n}-{}", logs::WATCHED_PREFIX, random_kid());
        let response = app
            .client
            .get(app.url("/api/v1/feedback"))
            .bearer_auth(token)
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        let problem = assert_problem(response, 401).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{what}: {detail}");

        let lines = logs::of_request(&id);
        assert!(
            lines
                .iter()
                .any(|line| line.contains("bearer token refused") && line.contains(reason)),
            "{what}: the reason is logged: {lines:#?}"
        );
        for line in &lines {
            assert!(
                line.contains("bearer token refused") || line.contains("lhs_rounds::access"),
                "{what}: nothing else is logged about it: {line}"
            );
            for secret in token
                .split('.')
                .filter(|part| part.len() > 8)
                .chain([marker.as_str(), email.as_str()])
            {
                assert!(!line.contains(secret), "{what}: {line}");
            }
        }
    }
    // Nothing the token checks logged, for any request, holds these tokens' claims.
    for line in logs::all() {
        assert!(!line.contains(&marker), "{line}");
    }
    // None of them needed the keys fetched again.
    assert_eq!(provider.jwks_fetches().await, 1);
}

async fn oidc_me_says_who_the_token_says(app: TestApp) {
    // The shared-secret mode: the minted token's subject and role.
    let unauthorized = app.request_as(None, Method::GET, "/api/v1/me", None).await;
    assert!(unauthorized.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_problem(unauthorized, 401).await;
    let token = app.token(
        "vera@example.org",
        &[lhs_rounds::platform::auth::Role::Viewer],
    );
    let (status, body) = me(&app, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"sub": "vera@example.org", "name": null, "email": null, "role": "viewer"})
    );

    let provider = Provider::start();
    let app = oidc_app(app.backend(), &provider, keycloak).await;
    let token = provider
        .mint_claims(keycloak_claims(
            "3f1c9a4e-0b7d-4b8e-9d55-1f2c3a4b5c6d",
            json!(["LHS-Rounds-Organizers"]),
        ))
        .await;
    let response = app
        .request_as(Some(&token), Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("private"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "sub": "3f1c9a4e-0b7d-4b8e-9d55-1f2c3a4b5c6d",
            "name": "Jane Doe",
            "email": "jane.doe@example.org",
            "role": "organizer"
        })
    );
    let revalidated = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    // Without `name`, `preferred_username`; without `email`, null; without `sub`, null.
    let mut claims = keycloak_claims("kc-2", json!([]));
    claims["name"] = Value::Null;
    claims["email"] = Value::Null;
    let token = provider.mint_claims(claims.clone()).await;
    let (_, body) = me(&app, Some(&token)).await;
    assert_eq!(
        body,
        json!({"sub": "kc-2", "name": "jdoe", "email": null, "role": "viewer"})
    );
    claims["sub"] = Value::Null;
    let token = provider.mint(json!({ "claims": claims })).await;
    let (status, body) = me(&app, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["sub"], Value::Null);
    assert_problem(
        app.request_as(None, Method::GET, "/api/v1/me", None).await,
        401,
    )
    .await;
}

async fn oidc_the_api_docs_sign_in_with_the_provider_when_configured(app: TestApp) {
    let committed = lhs_rounds::app::openapi::SERVED.trim_end();
    // Without OpenID Connect: the committed document, and no sign-in.
    let served = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, committed);
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!initializer.contains("initOAuth"), "{initializer}");

    let provider = Provider::start();
    // With the issuer but no client id: tokens are checked, the docs are as they were.
    let no_client = oidc_app(app.backend(), &provider, |_| {}).await;
    let served = no_client
        .client
        .get(no_client.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, committed);
    drop(no_client);

    let signing_in = oidc_app(app.backend(), &provider, |s| {
        keycloak(s);
        s.oidc_client_id = Some("lhs-rounds-docs".to_owned());
    })
    .await;
    let document: Value = signing_in
        .client
        .get(signing_in.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scheme = &document["components"]["securitySchemes"]["oidc"];
    assert_eq!(scheme["type"], "openIdConnect");
    assert_eq!(scheme["openIdConnectUrl"], provider.discovery_url());
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        document["paths"]["/api/v1/rounds"]["post"]["security"],
        json!([{"bearer": ["organizer", "admin"]}, {"oidc": []}])
    );
    assert_eq!(document["paths"]["/healthz"]["get"]["security"], json!([]));
    // The discovery URL it names is the provider's, and says so.
    let discovery: Value = reqwest::get(provider.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], provider.issuer);

    // Swagger UI: authorization code with PKCE, as the public client.
    let initializer = signing_in
        .client
        .get(signing_in.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("initOAuth"), "{initializer}");
    assert!(
        initializer.contains(r#""clientId": "lhs-rounds-docs""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""usePkceWithAuthorizationCodeGrant": true"#),
        "{initializer}"
    );
    assert!(!initializer.contains("clientSecret"), "{initializer}");
    // Its page may call the provider (discovery, the token endpoint), and nothing else new.
    let docs = signing_in
        .client
        .get(signing_in.url("/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let policy = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains(&format!("connect-src 'self' {};", provider.origin())),
        "{policy}"
    );
    let redirect = signing_in
        .client
        .get(signing_in.url("/docs/oauth2-redirect.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        redirect.status(),
        200,
        "the page the provider sends the code back to"
    );
}

async fn oidc_rs256_ps256_es256_and_at_jwt_tokens_are_accepted(app: TestApp) {
    let provider = Provider::start();
    let rs = provider.first_kid.clone();
    let ps = provider.add_key("PS256").await;
    let es = provider.add_key("ES256").await;
    let app = oidc_app(app.backend(), &provider, |_| {}).await;
    for kid in [&rs, &ps, &es] {
        let token = provider.mint(json!({ "kid": kid })).await;
        assert_eq!(me(&app, Some(&token)).await.0, 200, "{kid}");
    }
    // RFC 9068 access tokens.
    for typ in ["at+jwt", "application/at+jwt", "JWT"] {
        let token = provider.mint(json!({ "header": { "typ": typ } })).await;
        assert_eq!(me(&app, Some(&token)).await.0, 200, "{typ}");
    }
    let token = provider
        .mint(json!({ "header": { "typ": "logout+jwt" } }))
        .await;
    assert_eq!(me(&app, Some(&token)).await.0, 401);
    // Signed PS256 by the provider, but naming the RS256 key: the header's alg must be the key's.
    let token = provider
        .mint(json!({ "kid": ps, "header": { "kid": rs } }))
        .await;
    let problem = assert_problem(
        app.request_as(Some(&token), Method::GET, "/api/v1/me", None)
            .await,
        401,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not the algorithm of the key it names"),
        "{problem}"
    );
}

// ---- the verifier alone: what no request shows in a few seconds ---------------------------------

fn settings_for(provider: &Provider) -> OidcSettings {
    let mut settings = OidcSettings::new(&provider.issuer);
    settings.refresh_min = Duration::from_secs(1);
    settings.http_timeout = Duration::from_secs(3);
    settings.connect_timeout = Duration::from_secs(1);
    settings
}

async fn settled(verifier: &Verifier, attempts: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = verifier.status();
        if status.attempts >= attempts && !status.refreshing {
            return;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn oidc_keys_are_fetched_again_when_their_max_age_passes() {
    let provider = Provider::start();
    provider.cache_control(Some("public, max-age=1")).await;
    let verifier = Verifier::start(settings_for(&provider)).unwrap();
    // Every second or so, by itself, with no token asking.
    settled(&verifier, 3).await;
    assert!(provider.jwks_fetches().await >= 3);

    // Without Cache-Control the next keys last an hour: once fetched, no more fetches. (The
    // mock decides the header when a request arrives: the first fetch it counts after the
    // switch is one without it.)
    provider.cache_control(None).await;
    let served = provider.jwks_fetches().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while provider.jwks_fetches().await <= served {
        assert!(Instant::now() < deadline, "no fetch after the switch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = verifier.status().attempts;
    settled(&verifier, after).await;
    let fetches = provider.jwks_fetches().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(provider.jwks_fetches().await, fetches);
}

#[tokio::test]
async fn oidc_a_hung_provider_costs_a_token_at_most_the_timeout() {
    let provider = Provider::start();
    provider.delay(30_000).await;
    let mut settings = settings_for(&provider);
    settings.http_timeout = Duration::from_secs(1);
    let verifier = Verifier::start(settings).unwrap();
    let token = provider.mint_claims(json!({})).await;
    let began = Instant::now();
    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::ProviderUnavailable)
    );
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let error = verifier.status().last_error.expect("an error");
    // reqwest's own timeout or the refresh's deadline, whichever fires first.
    assert!(
        error.contains("timed out") || error.contains("no answer within 1s"),
        "{error}"
    );

    provider.delay(0).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while verifier.verify(&token).await.is_err() {
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn oidc_the_discovery_issuer_must_equal_the_setting_exactly() {
    let provider = Provider::start();
    // A trailing slash is another issuer: discovery is found, but its issuer differs.
    let mut settings = settings_for(&provider);
    settings.issuer = format!("{}/", provider.issuer);
    let verifier = Verifier::start(settings).unwrap();
    settled(&verifier, 1).await;
    let status = verifier.status();
    assert_eq!(status.keys, 0);
    let error = status.last_error.expect("an error");
    assert!(error.contains("set it exactly"), "{error}");
    let token = provider.mint_claims(json!({})).await;
    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::ProviderUnavailable)
    );
}

#[tokio::test]
async fn oidc_a_remembered_token_still_ends_at_exp_plus_leeway() {
    let provider = Provider::start();
    let verifier = Verifier::start(settings_for(&provider)).unwrap();
    // Expired 28 s ago: accepted for 2 s more, then refused, remembered or not.
    let token = provider.mint(json!({ "exp_in": -28 })).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert!(matches!(verifier.verify_cached(&token), Some(Ok(_))));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::Unauthorized(
            "the token has expired".to_owned()
        ))
    );
}

// ---- the pages' sign-in ---------------------------------------------------------------------

/// A browser of the tests: no redirect followed, cookies kept by hand (each `Set-Cookie` read,
/// sent back as `Cookie`), so that each step of the flow is seen.
struct Browser {
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            cookies: std::collections::BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies an answer sets (an empty value or `Max-Age=0` removes one), and
    /// returns the `Set-Cookie` lines.
    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let lines: Vec<String> = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &lines {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        lines
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }

    async fn post_form(
        &mut self,
        url: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::ORIGIN, origin)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The pages' client, as docs/identity-provider.md registers it.
const PAGES_CLIENT: &str = "lhs-rounds-docs";

/// An application on `app`'s backend whose pages sign in with `provider` (Keycloak's
/// settings and the pages' client), and whatever else `configure` sets; `app` is dropped.
async fn pages_app(
    app: TestApp,
    provider: &Provider,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let backend = app.backend();
    drop(app);
    oidc_app(backend, provider, |s| {
        keycloak(s);
        s.oidc_client_id = Some(PAGES_CLIENT.to_owned());
        configure(s);
    })
    .await
}

async fn oidc_pages_sign_in_with_code_and_pkce_into_a_session_cookie(app: TestApp) {
    let provider = Provider::start();
    let app = pages_app(app, &provider, |_| {}).await;
    provider
        .signin_claims(keycloak_claims("jane-sub", json!(["offline_access"])))
        .await;
    let admin = provider
        .mint_claims(keycloak_claims("admin-sub", json!(["LHS-Rounds-Admins"])))
        .await;
    let mut browser = Browser::new();

    // Signed out, /me sends the browser to sign in, and back to /me after.
    let response = browser.get(&app.url("/me")).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/signin?next=%2Fme");

    // The sign-in goes to the provider with PKCE (S256), a state, and the callback.
    let response = browser.get(&app.url("/signin?next=%2Fme")).await;
    assert_eq!(response.status(), 303);
    let set = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let authorize = url::Url::parse(&location(&response)).unwrap();
    assert!(
        authorize.as_str().starts_with(&provider.issuer),
        "{authorize}"
    );
    let query: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], PAGES_CLIENT);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(query["redirect_uri"], app.url("/signin/callback"));
    let state = query["state"].clone();
    assert_eq!(browser.cookies.get("lhs_signin"), Some(&state));
    assert!(
        set[0].contains("HttpOnly") && set[0].contains("Secure") && set[0].contains("SameSite=Lax"),
        "{set:?}"
    );

    // The provider signs the person in and sends the browser back with a code.
    let response = browser.get(authorize.as_str()).await;
    assert_eq!(response.status(), 302);
    let callback = location(&response);
    assert!(
        callback.starts_with(&app.url("/signin/callback?")),
        "{callback}"
    );

    // A callback from another browser (no state cookie) does not sign anyone in.
    let mut stranger = Browser::new();
    let response = stranger.get(&callback).await;
    assert_eq!(response.status(), 400);
    assert!(!stranger.cookies.contains_key("lhs_session"));

    let response = browser.get(&callback).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    assert_eq!(location(&response), "/me");
    let session = browser
        .cookies
        .get("lhs_session")
        .cloned()
        .expect("a session cookie");
    let set = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lhs_session="))
        .unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !session.contains('.') && session.len() == 43,
        "an opaque id, not a token: {session}"
    );
    assert!(
        !browser.cookies.contains_key("lhs_signin"),
        "the state cookie is gone"
    );
    // The same callback again (a replay) opens nothing: the sign-in was used.
    let mut replay = Browser::new();
    replay
        .cookies
        .insert("lhs_signin".to_owned(), state.clone());
    assert_eq!(replay.get(&callback).await.status(), 400);

    // Signed in: /me is the person's transcript, kept by no cache.
    let response = browser.get(&app.url("/me")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CACHE_CONTROL],
        "private, no-store"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Your transcript") && html.contains("jane.doe@example.org"),
        "{html}"
    );
    assert!(html.contains("No attendance is recorded for you yet"));

    // A check-in signed in: the person comes from the session. The series designates credit
    // and requires an evaluation.
    let series = app
        .request_as(
            Some(&admin),
            Method::PATCH,
            "/api/v1/series",
            Some(&json!({"credit_type": "ama_pra_category_1", "evaluation_required": true})),
        )
        .await;
    assert_eq!(series.status(), 200, "{}", series.text().await.unwrap());
    let at = |minutes: i64| {
        (chrono::Utc::now() + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let round = app
        .request_as(
            Some(&admin),
            Method::POST,
            "/api/v1/rounds",
            Some(&json!({"starts_at": at(-10), "ends_at": at(50),
                "location": "BMC – MassMutual 5", "title": "Signed-in check-in"})),
        )
        .await;
    assert_eq!(round.status(), 201);
    let round = round.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // The round's statement was published the day before it started (dated back: the API
    // publishes now).
    let published = app
        .request_as(
            Some(&admin),
            Method::POST,
            &format!("/api/v1/rounds/{round}/disclosure-statement"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        published.status(),
        201,
        "{}",
        published.text().await.unwrap()
    );
    let dated = format!(
        "UPDATE disclosure_statements SET published_at = '{}' WHERE round_id = {round}",
        (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d %H:%M:%S")
    );
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn = database.connection().unwrap();
        diesel::sql_query(&dated).execute(&mut *conn).unwrap();
    })
    .await
    .unwrap();
    let code: Value = app
        .request_as(
            Some(&admin),
            Method::GET,
            &format!("/api/v1/rounds/{round}/checkin-code"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let html = browser
        .get(&app.url(&format!("/checkin/{round}?code={code}")))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Signed in as Jane Doe (jane.doe@example.org)"),
        "{html}"
    );
    assert!(html.contains(r#"value="jane.doe@example.org""#));
    let nonce = html
        .split(r#"name="nonce" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let response = browser
        .post_form(
            &app.url(&format!("/checkin/{round}")),
            &app.address,
            &[
                ("nonce", &nonce),
                ("code", &code),
                ("full_name", "Jane Doe"),
                ("email", "jane.doe@example.org"),
                ("profession", "physician"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let records: Value = app
        .request_as(
            Some(&admin),
            Method::GET,
            &format!("/api/v1/rounds/{round}/attendance"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(records["total"], 1);
    let attendee: Value = app
        .request_as(
            Some(&admin),
            Method::GET,
            &format!("/api/v1/attendees/{}", records["items"][0]["attendee_id"]),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        attendee["sub"], "jane-sub",
        "the session's person: {attendee}"
    );
    assert_eq!(records["items"][0]["credit_status"], "pending_evaluation");

    // Rating the round from its page, signed in, is her evaluation: the claim is awarded.
    let response = browser
        .post_form(
            &app.url(&format!("/rounds/{round}/feedback")),
            &app.address,
            &[("rating", "5")],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let record: Value = app
        .request_as(
            Some(&admin),
            Method::GET,
            &format!(
                "/api/v1/rounds/{round}/attendance/{}",
                records["items"][0]["id"]
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["credit_status"], "awarded", "{record}");

    // Now the transcript has the round, and the year's certificate prints it.
    let html = browser.get(&app.url("/me")).await.text().await.unwrap();
    assert!(html.contains("Signed-in check-in"), "{html}");
    let year: String = html
        .split("/me/certificate/")
        .nth(1)
        .expect("a certificate link")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(year.len(), 4, "{html}");
    let response = browser
        .get(&app.url(&format!("/me/certificate/{year}")))
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Certificate of attendance") && html.contains("Jane Doe"));
    assert!(html.contains("Signed-in check-in"));
    let response = browser.get(&app.url("/me/certificate/1999")).await;
    assert_eq!(response.status(), 404);

    // A round's page, signed in, lists what a signed-in person may see (for them only, never
    // kept), and serves its file; signed out, neither.
    let material = app
        .request_as(
            Some(&admin),
            Method::POST,
            &format!("/api/v1/rounds/{round}/materials"),
            Some(&json!({"kind": "slides", "title": "Staff slides", "visibility": "staff"})),
        )
        .await;
    assert_eq!(material.status(), 201);
    let material = material.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let uploaded = app
        .client
        .put(app.url(&format!("/api/v1/rounds/{round}/materials/{material}/file")))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nstaff only\n%%EOF\n".to_vec())
        .send()
        .await
        .unwrap();
    assert!(
        uploaded.status().is_success(),
        "{}",
        uploaded.text().await.unwrap()
    );
    let file = format!("/rounds/{round}/materials/{material}/file");
    let response = browser.get(&app.url(&format!("/rounds/{round}"))).await;
    assert_eq!(
        response.headers()[reqwest::header::CACHE_CONTROL],
        "private, no-store"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Staff slides") && html.contains(&file),
        "{html}"
    );
    let response = browser.get(&app.url(&file)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().starts_with(b"%PDF"));
    let mut nobody = Browser::new();
    let html = nobody
        .get(&app.url(&format!("/rounds/{round}")))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Staff slides"), "{html}");
    assert_eq!(nobody.get(&app.url(&file)).await.status(), 404);

    // Signing out ends the session: the cookie is cleared, and the old id opens nothing.
    let response = browser
        .post_form(&app.url("/signout"), &app.address, &[])
        .await;
    assert_eq!(response.status(), 303);
    assert!(!browser.cookies.contains_key("lhs_session"));
    let mut old = Browser::new();
    old.cookies.insert("lhs_session".to_owned(), session);
    let response = old.get(&app.url("/me")).await;
    assert_eq!(response.status(), 303, "the session is closed");
    // A public page is the same whoever asks: a session changes nothing there.
    let html = old.get(&app.url("/")).await.text().await.unwrap();
    assert!(!html.contains("jane.doe@example.org"));
}

async fn oidc_without_a_client_id_the_pages_are_public_only(app: TestApp) {
    let provider = Provider::start();
    let backend = app.backend();
    drop(app);
    let app = oidc_app(backend, &provider, keycloak).await;
    let mut browser = Browser::new();
    for path in ["/signin?next=%2Fme", "/me", "/me/certificate/2026"] {
        let response = browser.get(&app.url(path)).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("Sign-in is not set up"));
    }
    assert!(browser.cookies.is_empty());
}

async fn oidc_sign_ins_started_are_limited_per_client_and_read_discovery_once(app: TestApp) {
    use diesel::prelude::*;
    let provider = Provider::start();
    let app = pages_app(app, &provider, |s| {
        s.signin_rate_limit = "3/minute".to_owned()
    })
    .await;
    let signins_kept = || {
        let database = app.database.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = database.connection().unwrap();
                lhs_rounds::platform::schema::page_signins::table
                    .count()
                    .get_result::<i64>(&mut *conn)
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    provider.reset_stats().await;
    for _ in 0..3 {
        let response = Browser::new().get(&app.url("/signin?next=%2Fme")).await;
        assert_eq!(response.status(), 303);
    }
    // Three sign-ins, one reading of the provider's discovery document.
    assert_eq!(provider.discovery_fetches().await, 1);
    assert_eq!(signins_kept().await, 3);

    // The fourth from the same address is refused before anything is written or asked.
    let mut browser = Browser::new();
    let response = browser.get(&app.url("/signin?next=%2Fme")).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(response.text().await.unwrap().contains("Too many sign-ins"));
    assert!(browser.cookies.is_empty(), "no state cookie");
    assert_eq!(signins_kept().await, 3);
    assert_eq!(provider.discovery_fetches().await, 1);
}

/// Signs `browser` in to `app`'s pages through `provider` (the whole flow, followed).
async fn signed_in_browser(app: &TestApp) -> Browser {
    let mut browser = Browser::new();
    let response = browser.get(&app.url("/signin?next=%2F")).await;
    assert_eq!(response.status(), 303);
    let response = browser.get(&location(&response)).await;
    assert_eq!(response.status(), 302);
    let response = browser.get(&location(&response)).await;
    assert_eq!(response.status(), 303);
    assert!(browser.cookies.contains_key("lhs_session"));
    browser
}

async fn oidc_a_schedule_not_public_is_read_on_the_pages_signed_in(app: TestApp) {
    let provider = Provider::start();
    let app = pages_app(app, &provider, |s| s.public_read = false).await;
    provider
        .signin_claims(keycloak_claims("jane-sub", json!(["offline_access"])))
        .await;
    let admin = provider
        .mint_claims(keycloak_claims("admin-sub", json!(["LHS-Rounds-Admins"])))
        .await;
    let round = app
        .request_as(
            Some(&admin),
            Method::POST,
            "/api/v1/rounds",
            Some(
                &json!({"starts_at": "2027-02-18T17:00:00Z", "ends_at": "2027-02-18T18:00:00Z",
                "location": "BMC – MassMutual 5", "title": "Behind sign-in"}),
            ),
        )
        .await;
    assert_eq!(round.status(), 201);
    let round = round.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let mut nobody = Browser::new();
    for path in ["/".to_owned(), format!("/rounds/{round}")] {
        assert_eq!(nobody.get(&app.url(&path)).await.status(), 401, "{path}");
    }
    let mut browser = signed_in_browser(&app).await;
    for path in ["/".to_owned(), format!("/rounds/{round}")] {
        let response = browser.get(&app.url(&path)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.text().await.unwrap().contains("Behind sign-in"));
    }
}
