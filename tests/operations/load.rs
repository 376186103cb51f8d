//! Clients writing and reading as fast as they can, and a tally of what they were told.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What one kind of request a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Feedback only.
    Feedback,
    /// Feedback, rounds with their speakers, and lists of rounds, in turn.
    Everything,
}

/// A request that did not succeed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub request: &'static str,
    /// The status, when there was an answer.
    pub status: Option<u16>,
    pub problem_json: bool,
    pub error: String,
    pub took: Duration,
    pub at: Instant,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(
                f,
                "{} answered {status} after {:?}: {}",
                self.request, self.took, self.error
            ),
            None => write!(
                f,
                "{} failed after {:?}: {}",
                self.request, self.took, self.error
            ),
        }
    }
}

/// The first few failures, one per line, for assertion messages.
pub fn some(failures: &[Failure]) -> String {
    failures
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Default)]
pub struct Tally {
    /// Feedback the server acknowledged (201), by id.
    pub feedback: Vec<i64>,
    /// Rounds the server acknowledged (201), with the speakers each was created with.
    pub rounds: Vec<(i64, Vec<i64>)>,
    /// When each successful request was answered.
    pub successes: Vec<Instant>,
    pub failures: Vec<Failure>,
    /// Connections refused: the request never reached the server.
    pub refused: usize,
    /// When a request was reset before any answer began: what a client sees when its connection
    /// waited in the kernel's accept queue as the listener closed (the service never read it).
    pub resets: Vec<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.feedback.extend(other.feedback);
        self.rounds.extend(other.rounds);
        self.successes.extend(other.successes);
        self.failures.extend(other.failures);
        self.refused += other.refused;
        self.resets.extend(other.resets);
    }

    /// Successes answered after `moment`.
    pub fn successes_after(&self, moment: Instant) -> usize {
        self.successes.iter().filter(|at| **at > moment).count()
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    /// `clients` clients sending `mix` to `address` with `token`, until stopped. `speakers`
    /// are the speaker ids rounds are created with.
    pub fn start(address: &str, token: &str, clients: usize, mix: Mix, speakers: &[i64]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|n| {
                let (address, token, stop) = (address.to_owned(), token.to_owned(), stop.clone());
                let speakers = speakers.to_vec();
                tokio::spawn(async move { client(n, address, token, mix, speakers, stop).await })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients and adds up what they were told.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut tally = Tally::default();
        for client in self.clients {
            tally.merge(client.await.expect("a load client"));
        }
        tally
    }
}

async fn client(
    n: usize,
    address: String,
    token: String,
    mix: Mix,
    speakers: Vec<i64>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let http = reqwest::Client::builder()
        // Long enough that a hang shows up as a slow failure rather than being cut short.
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    let mut tally = Tally::default();
    let mut turn = n;
    while !stop.load(Ordering::SeqCst) {
        turn += 1;
        let kind = match mix {
            Mix::Feedback => 0,
            Mix::Everything => turn % 3,
        };
        let (request, builder) = match kind {
            0 => (
                "POST /feedback",
                http.post(format!("{address}/api/v1/feedback"))
                    .json(&json!({
                        "kind": "general",
                        "comment": format!("load {n}-{turn}"),
                    })),
            ),
            1 if !speakers.is_empty() => {
                let day = 1 + turn % 28;
                (
                    "POST /rounds",
                    http.post(format!("{address}/api/v1/rounds")).json(&json!({
                        "title": format!("Load round {n}-{turn}"),
                        "starts_at": format!("2032-02-{day:02}T17:00:00Z"),
                        "ends_at": format!("2032-02-{day:02}T18:00:00Z"),
                        "location": "Hospital A, room 1",
                        "speakers": speakers.iter().map(|id| json!({"speaker_id": id})).collect::<Vec<_>>(),
                    })),
                )
            }
            _ => (
                "GET /rounds",
                http.get(format!("{address}/api/v1/rounds?limit=5")),
            ),
        };
        let started = Instant::now();
        match builder.bearer_auth(&token).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let problem_json = response
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes() == b"application/problem+json");
                let body = response.text().await.unwrap_or_default();
                if (200..300).contains(&status) {
                    tally.successes.push(Instant::now());
                    if status == 201 {
                        let record: Value = serde_json::from_str(&body).expect("a JSON record");
                        let id = record["id"].as_i64().expect("an id");
                        if request == "POST /feedback" {
                            tally.feedback.push(id);
                        } else {
                            tally.rounds.push((id, speakers.clone()));
                        }
                    }
                } else {
                    tally.failures.push(Failure {
                        request,
                        status: Some(status),
                        problem_json,
                        error: body,
                        took: started.elapsed(),
                        at: Instant::now(),
                    });
                }
            }
            Err(e) if e.is_connect() => {
                tally.refused += 1;
                // Nothing listens (stopped or restarting): don't spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) if e.is_request() && was_reset(&e) => tally.resets.push(Instant::now()),
            Err(e) => tally.failures.push(Failure {
                request,
                status: None,
                problem_json: false,
                error: format!("{e:?}"),
                took: started.elapsed(),
                at: Instant::now(),
            }),
        }
    }
    tally
}

/// Whether the connection was reset under `error` (rather than timed out, or cut mid-answer).
fn was_reset(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = cause.source();
    }
    false
}
