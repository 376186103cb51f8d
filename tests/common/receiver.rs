//! A webhook receiver for tests: records every request it gets and answers each with the next
//! of the statuses it was given (then 204), so that a test can make it fail, succeed, say 410,
//! or take a request and never answer it (status 0).
//!
//! Shared by the test crates `api` and `operations`; each uses part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Receiver {
    pub url: String,
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

/// One request a [`Receiver`] got, and what it answered (0: nothing).
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub answered: u16,
    /// When it came in.
    pub at: std::time::Instant,
}

impl Received {
    /// The `webhook-id` it was sent with.
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// How long a request answered with status 0 is held before its connection is dropped.
const HELD: Duration = Duration::from_secs(3600);

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        Self::serve(listener, statuses)
    }

    /// A receiver on a given port (one that was free), answering `statuses` first.
    pub async fn start_on(port: u16, statuses: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the port");
        Self::serve(listener, statuses)
    }

    fn serve(listener: tokio::net::TcpListener, statuses: &[u16]) -> Receiver {
        let port = listener.local_addr().expect("an address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let (log, answers) = (received.clone(), statuses.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, log.clone(), answers.clone()));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            received,
            statuses,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests have come (at most `seconds`).
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<Received> {
        for _ in 0..seconds * 20 {
            if self.received().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.statuses
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }
}

/// Reads one request from `socket`, records it, and answers it (or holds it, for status 0).
async fn answer(
    mut socket: tokio::net::TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
) {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let (head_end, length) = loop {
        let Ok(n) = socket.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buffer[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while data.len() < head_end + length {
        let Ok(n) = socket.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..n]);
    }
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&data[head_end..]).to_string();
    let status = answers.lock().unwrap().pop_front().unwrap_or(204);
    log.lock().unwrap().push(Received {
        path,
        headers,
        body,
        answered: status,
        at: std::time::Instant::now(),
    });
    if status == 0 {
        tokio::time::sleep(HELD).await;
        return;
    }
    let answer =
        format!("HTTP/1.1 {status} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = socket.write_all(answer.as_bytes()).await;
}
