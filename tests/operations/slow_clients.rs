//! Slow clients (slowloris): 200 connections dripping their headers one byte a second are cut
//! off by the client request timeout, and other clients are served meanwhile.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::serial;
use crate::server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_slow_clients_do_not_stop_others_being_served() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let server = Server::start(&database, &dir.path().join("server.log"), &[]).await;
    let address = server.address.trim_start_matches("http://").to_owned();

    let slow: Vec<_> = (0..200)
        .map(|_| {
            let address = address.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                let started = Instant::now();
                let head = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n";
                let mut buffer = [0u8; 512];
                for byte in head {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return Some(started.elapsed());
                    }
                    // A second between bytes, watching for the server giving up on us.
                    match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer))
                        .await
                    {
                        Ok(Ok(_)) | Ok(Err(_)) => return Some(started.elapsed()),
                        Err(_) => {}
                    }
                }
                None // sent its whole head without being cut off
            })
        })
        .collect();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut served = 0;
    for _ in 0..30 {
        let answer = client.get(server.url("/api/v1/rounds")).send().await;
        assert!(
            answer.as_ref().is_ok_and(|a| a.status() == 200),
            "a normal client was not served: {answer:?}"
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served, 30);

    let mut cut_off = Vec::new();
    for connection in slow {
        if let Some(after) = connection.await.unwrap() {
            cut_off.push(after);
        }
    }
    assert_eq!(cut_off.len(), 200, "every slow connection is cut off");
    assert!(
        cut_off.iter().all(|after| *after < Duration::from_secs(15)),
        "cut off by the client request timeout: {:?}",
        cut_off.iter().max()
    );
}
