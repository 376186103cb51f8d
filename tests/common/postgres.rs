//! Throwaway PostgreSQL clusters for tests, started from the installed server binaries
//! (`/usr/lib/postgresql/*/bin`), as the `postgres` user when the tests run as root (the server
//! refuses root). A watchdog stops each cluster and removes its files when the test process
//! ends, however it ends.
//!
//! Shared by the test crates `api` and `operations`; each uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel::{Connection, RunQueryDsl};

pub struct Cluster {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub admin_url: String,
    bin: PathBuf,
    data: String,
    log: String,
    options: String,
    as_postgres: bool,
}

impl Cluster {
    /// A new cluster named `name` (unique within this test process), started and listening on
    /// a free port of 127.0.0.1. Durability is off (fsync): the tests are not about disks. WAL is
    /// kept small (every `CREATE DATABASE` logs its whole template) to spare small CI disks.
    pub fn start(name: &str) -> Result<Cluster, String> {
        Cluster::start_with(name, false)
    }

    /// [`Cluster::start`], with TLS on (a self-signed certificate made with `openssl`) and TCP
    /// logins by password (SCRAM) for every role but `postgres`, which stays trusted for the
    /// tests' own set-up.
    pub fn start_secured(name: &str) -> Result<Cluster, String> {
        Cluster::start_with(name, true)
    }

    fn start_with(name: &str, secured: bool) -> Result<Cluster, String> {
        let bin = server_bin_dir()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("lhs-rounds-{name}-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot give the cluster directory to the postgres user".to_owned());
            }
        }
        let data = dir.join("data").to_string_lossy().into_owned();
        let dir_str = dir.to_string_lossy().into_owned();
        run_pg(
            &bin.join("initdb"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            as_postgres,
        )?;
        let mut tls = String::new();
        if secured {
            tls = secure(&dir, &data, as_postgres)?;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let options = format!(
            "-p {port} -k {dir_str} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=1000 \
             -c max_wal_size=64MB -c min_wal_size=32MB{tls}"
        );
        let log = dir.join("postgres.log").to_string_lossy().into_owned();
        let cluster = Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            log,
            options,
            as_postgres,
        };
        cluster.pg_ctl(&["start"])?;
        let pg_ctl = cluster.bin.join("pg_ctl").to_string_lossy().into_owned();
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {runner}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir_str}",
            pid = std::process::id(),
            data = cluster.data,
            runner = if as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
        );
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cluster watchdog: {e}"))?;
        Ok(cluster)
    }

    /// `pg_ctl stop -m fast`: sessions are ended, as in a restart or a failover.
    pub fn stop_fast(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "fast", "stop"])
    }

    /// Starts the cluster again after [`Cluster::stop_fast`].
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl(&["start"])
    }

    /// `pg_ctl restart -m fast`.
    pub fn restart_fast(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "fast", "restart"])
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut admin = diesel::PgConnection::establish(&self.admin_url)
            .map_err(|e| format!("cannot connect to the test cluster: {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        Ok(database_url(&self.admin_url, name))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec![
            "-D",
            self.data.as_str(),
            "-l",
            self.log.as_str(),
            "-o",
            self.options.as_str(),
            "-w",
            "-t",
            "60",
        ];
        all.extend_from_slice(args);
        run_pg(&self.bin.join("pg_ctl"), &all, self.as_postgres)
    }
}

/// A self-signed certificate and its key in `dir`, owned by the server's user, and a
/// `pg_hba.conf` that asks every TCP login but `postgres`'s for a password: the options that
/// turn TLS on.
fn secure(dir: &Path, data: &str, as_postgres: bool) -> Result<String, String> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=127.0.0.1")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !made.status.success() {
        return Err(format!(
            "openssl could not make a certificate: {}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    let hba = "local all all trust\n\
               host all postgres 127.0.0.1/32 trust\n\
               hostssl all all 127.0.0.1/32 scram-sha-256\n";
    std::fs::write(Path::new(data).join("pg_hba.conf"), hba)
        .map_err(|e| format!("cannot write pg_hba.conf: {e}"))?;
    let owner = if as_postgres { "postgres:postgres" } else { "" };
    let mut steps = vec![vec![
        "chmod".to_owned(),
        "600".to_owned(),
        key.display().to_string(),
    ]];
    if as_postgres {
        steps.push(vec![
            "chown".to_owned(),
            "-R".to_owned(),
            owner.to_owned(),
            dir.display().to_string(),
        ]);
    }
    for step in steps {
        let status = Command::new(&step[0])
            .args(&step[1..])
            .status()
            .map_err(|e| format!("{}: {e}", step[0]))?;
        if !status.success() {
            return Err(format!("{step:?} failed"));
        }
    }
    Ok(format!(
        " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c password_encryption=scram-sha-256",
        cert.display(),
        key.display()
    ))
}

/// `admin_url` pointing at database `name` instead.
pub fn database_url(admin_url: &str, name: &str) -> String {
    match admin_url.rfind('/') {
        Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &admin_url[..slash]),
        _ => format!("{admin_url}/{name}"),
    }
}

fn server_bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL server under /usr/lib/postgresql".to_owned())?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a server binary, as the `postgres` user when we are root (postgres refuses root).
fn run_pg(bin: &Path, args: &[&str], as_postgres: bool) -> Result<(), String> {
    let output = if as_postgres {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
