//! The real binary, started as operators start it: a child process configured by environment
//! variables, its log in a file, stopped by signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The HS256 secret of these tests' servers.
pub const SECRET: &str = "operations-test-secret-of-32-bytes-or-more";

pub const BINARY: &str = env!("CARGO_BIN_EXE_lhs-rounds");

pub struct Server {
    child: Child,
    pub address: String,
    pub database_url: String,
    pub log: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts `lhs-rounds serve` on `database_url` with `env` on top of the tests' defaults
    /// (a free port, two workers, the test secret, info logs), logging to `log`.
    pub fn spawn(database_url: &str, log: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("a log file");
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("LHS_BIND", format!("127.0.0.1:{port}"))
            .env("LHS_WORKERS", "2")
            .env("LHS_JWT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("a log file"))
            .stderr(log_file);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the binary starts");
        Server {
            child,
            address: format!("http://127.0.0.1:{port}"),
            database_url: database_url.to_owned(),
            log: log.to_owned(),
        }
    }

    /// [`Server::spawn`], then waits until `/readyz` says 200.
    pub async fn start(database_url: &str, log: &Path, env: &[(&str, &str)]) -> Server {
        let server = Server::spawn(database_url, log, env);
        server.wait_ready(Duration::from_secs(60)).await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn wait_ready(&self, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not get ready; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (`TERM`, `KILL`...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to end (at most `within`, then kills it and fails).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        wait_child(&mut self.child, within, &self.log)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_child(child: &mut Child, within: Duration, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the process did not exit within {within:?}; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `lhs-rounds <args>` to completion with `DATABASE_URL` (and the test secret).
pub fn run_command(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("LHS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// An admin token minted by the binary's own `token` command.
pub fn admin_token(subject: &str) -> String {
    let output = run_command("unused.db", &["token", "--sub", subject, "--role", "admin"]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("a token")
        .trim()
        .to_owned()
}

/// base64url without padding, as JWTs are written.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
