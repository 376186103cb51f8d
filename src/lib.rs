//! lhs-rounds: the system of record for a hospital's Learning Health System Rounds.
//!
//! The folders are the layers, lowest first: [`platform`] (what every resource shares:
//! configuration, errors, the database, HTTP semantics, sign-in, validation, the CRUD
//! plumbing), [`schedule`] (the series and its rounds), [`disclosure`] (financial relationships,
//! judged and disclosed to learners), [`learning`] (initiatives, PDSA cycles, measures with their
//! run charts, and what each round decided), [`credit`] (attendance and CME credit),
//! [`integration`] (the change feed and
//! webhooks), [`operations`] (probes, backups, shutdown) and [`app`] (the route table, the
//! OpenAPI document, start-up). `ARCHITECTURE.md` is the map, and a test holds the code to it.

#![forbid(unsafe_code)]

pub mod app;
pub mod credit;
pub mod disclosure;
pub mod integration;
pub mod learning;
pub mod operations;
pub mod platform;
pub mod schedule;
pub mod site;

use app::{demo, openapi, startup};
use operations::backup;
use platform::config::{Cli, Command};
use platform::{auth, db, telemetry};

/// Runs the command line: the whole program but for logging set-up.
pub async fn run(cli: Cli) -> Result<(), String> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let started = std::time::Instant::now();
            let app = startup::Application::build(&settings)?;
            log::info!(
                "serving the LHS Rounds API {} ({}) on http://{} ({:?} backend, ready in {} ms)",
                env!("CARGO_PKG_VERSION"),
                telemetry::GIT_COMMIT,
                settings.bind.replace(":0", &format!(":{}", app.port())),
                app.database().backend(),
                started.elapsed().as_millis()
            );
            app.run_until_stopped()
                .await
                .map_err(|e| format!("server error: {e}"))?;
            log::info!("stopped");
            Ok(())
        }
        Command::Backup { file } => {
            let url = db::DatabaseUrl::parse(&settings.database_url);
            println!("{}", backup::backup(&url, &file)?);
            Ok(())
        }
        Command::Check { repair } => {
            let url = db::DatabaseUrl::parse(&settings.database_url);
            let mut report = backup::check(&url)?;
            // A check changes nothing: the directory beside the database is read if it is there,
            // never made.
            let default_dir = (url.backend == db::Backend::Sqlite)
                .then(|| platform::files::default_dir(&url.target))
                .filter(|dir| dir.is_dir());
            let files = platform::files::Files::open(
                settings.materials_url.as_deref(),
                default_dir.as_deref(),
                settings.material_max_mb,
            )?;
            backup::check_files(&url, &files, repair, &mut report).await?;
            for note in &report.notes {
                println!("note: {note}");
            }
            for problem in &report.problems {
                println!("problem: {problem}");
            }
            if report.problems.is_empty() {
                println!("ok: {} at {}", report.checked.join(", "), url.location());
                Ok(())
            } else {
                Err(format!(
                    "{} problem(s) found in {}",
                    report.problems.len(),
                    url.location()
                ))
            }
        }
        Command::Migrate => {
            let db = db::Database::open_within(
                &settings.database_url,
                1,
                settings.db_connect_timeout.into(),
            )?;
            log::info!("migrations are up to date ({:?} backend)", db.backend());
            Ok(())
        }
        Command::SeedDemo => {
            let db = db::Database::open(&settings.database_url, 1)?;
            let mut conn = db.connection().map_err(|e| e.to_string())?;
            let report = demo::seed(&mut conn).map_err(|e| format!("demo data: {e}"))?;
            println!("demo data: {report}");
            Ok(())
        }
        Command::Token { sub, roles, ttl } => {
            // Before the token checker starts: with OpenID Connect it would start fetching keys.
            if auth::Auth::oidc_settings(&settings)?.is_some() {
                return Err(
                    "tokens are issued by the identity provider (LHS_OIDC_ISSUER); \
                     `lhs-rounds token` mints them only with a shared secret"
                        .to_owned(),
                );
            }
            let auth = auth::Auth::from_settings(&settings)?;
            let roles: Vec<auth::Role> =
                roles.iter().filter_map(|r| auth::Role::parse(r)).collect();
            let token = auth.mint(&sub, &roles, ttl.into())?;
            // A token signed with another secret than the server's is refused (401): say which
            // one this is, on stderr so that `$(lhs-rounds token ...)` captures only the token.
            match auth.secret_source() {
                Some(auth::SecretSource::Setting) => {
                    eprintln!("lhs-rounds token: signed with LHS_JWT_SECRET")
                }
                Some(auth::SecretSource::File {
                    path,
                    created: false,
                }) => eprintln!(
                    "lhs-rounds token: signed with the secret in {}",
                    path.display()
                ),
                Some(auth::SecretSource::File {
                    path,
                    created: true,
                }) => eprintln!(
                    "warning: created a new token secret at {}; a server using another database \
                     will not accept this token",
                    path.display()
                ),
                None => {} // a public key: `mint` has refused already
            }
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", openapi::to_json(&openapi::document()));
            Ok(())
        }
    }
}
