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

/// Slow bodies: 200 connections that send their head at once, then their body a byte a second,
/// are answered 408 and closed after `LHS_BODY_TIMEOUT`, and other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_slow_bodies_are_cut_off_and_others_are_served() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let server = Server::start(
        &database,
        &dir.path().join("server.log"),
        &[("LHS_BODY_TIMEOUT", "3s")],
    )
    .await;
    let address = server.address.trim_start_matches("http://").to_owned();

    let slow: Vec<_> = (0..200)
        .map(|_| {
            let address = address.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                let started = Instant::now();
                let body = br#"{"kind": "general", "comment": "a comment sent very slowly"}"#;
                let head = format!(
                    "POST /api/v1/feedback HTTP/1.1\r\nHost: slow.example\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                for byte in body {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    // A second between bytes, watching for the server's answer.
                    let mut buffer = [0u8; 1024];
                    match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => {
                            answer.extend_from_slice(&buffer[..n]);
                            // The rest of the answer, then the end of the connection.
                            let _ = tokio::time::timeout(
                                Duration::from_secs(5),
                                stream.read_to_end(&mut answer),
                            )
                            .await;
                            break;
                        }
                        Err(_) => {}
                    }
                }
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&answer).into_owned(),
                )
            })
        })
        .collect();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for n in 0..20 {
        let answer = client.get(server.url("/api/v1/rounds")).send().await;
        assert!(
            answer.as_ref().is_ok_and(|a| a.status() == 200),
            "a normal client was not served ({n}): {answer:?}"
        );
        let sent = client
            .post(server.url("/api/v1/feedback"))
            .header("content-type", "application/json")
            .body(r#"{"kind": "general", "comment": "sent at once"}"#)
            .send()
            .await;
        assert!(
            sent.as_ref().is_ok_and(|a| a.status() == 201),
            "a normal body was not read ({n}): {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    for connection in slow {
        let (after, answer) = connection.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a slow body is answered 408, not {answer:?}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(
            after >= Duration::from_millis(2900) && after < Duration::from_secs(15),
            "cut off by LHS_BODY_TIMEOUT, after {after:?}"
        );
    }
}
