//! The rate limiter's memory: a million distinct client addresses (half IPv4, half IPv6
//! networks) through both limits of a process keep it within a fixed number of tracked
//! clients, and the process within 64 MB of what it was.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use lhs_rounds::platform::ratelimit::{Limits, Rate, MAX_TRACKED_CLIENTS};
use lhs_rounds::platform::telemetry;

use crate::serial;

const ADDRESSES: u32 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_addresses_keep_the_limiter_within_bounded_memory() {
    let _turn = serial().await;
    let rate: Rate = "120/minute".parse().unwrap();
    let limits = Limits::new(Some(rate), "30/minute".parse().unwrap(), Vec::new());
    let feedback = limits.anonymous_feedback.as_ref().unwrap();
    let idle = telemetry::resident_memory_bytes().expect("this process's resident memory");
    let started = Instant::now();

    for n in 0..ADDRESSES {
        let address = if n % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
        } else {
            // A network of its own for each: the first 64 bits differ.
            IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8_u128 << 96) | (u128::from(n) << 64) | 1,
            ))
        };
        feedback
            .take(address)
            .expect("a new client has its whole quota");
        limits
            .failed_authentication
            .take(address)
            .expect("a new client has its whole quota");
    }

    let elapsed = started.elapsed();
    let after = telemetry::resident_memory_bytes().expect("this process's resident memory");
    let grown = after.saturating_sub(idle);
    eprintln!(
        "rate limiter: {ADDRESSES} addresses through both limits in {elapsed:.2?}; resident \
         memory {} kB idle, {} kB after (+{} kB); tracked: {} and {}",
        idle / 1024,
        after / 1024,
        grown / 1024,
        feedback.tracked(),
        limits.failed_authentication.tracked()
    );
    assert!(feedback.tracked() <= MAX_TRACKED_CLIENTS);
    assert!(limits.failed_authentication.tracked() <= MAX_TRACKED_CLIENTS);
    assert!(
        feedback.tracked() >= MAX_TRACKED_CLIENTS / 2,
        "the limit still tracks many clients: {}",
        feedback.tracked()
    );
    assert!(grown < 64 << 20, "the process grew by {} kB", grown / 1024);
}
