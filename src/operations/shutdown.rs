//! Graceful shutdown. On SIGTERM or SIGINT:
//! 1. `/readyz` answers 503 at once, and answers ask clients to close their connections;
//! 2. for the grace period (`LHS_SHUTDOWN_GRACE`) everything is still served, so that load
//!    balancers notice and send new requests elsewhere;
//! 3. then the listener closes (new connections are refused) and requests in flight finish, for
//!    up to `LHS_SHUTDOWN_TIMEOUT`;
//! 4. the webhook worker finishes its current attempts, and the process exits 0.
//!
//! A second signal skips what is left of the grace period.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;

/// Whether this process is shutting down (shared with the handlers as application data).
#[derive(Debug, Default)]
pub struct Draining(AtomicBool);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How the process stops.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    /// Serving on after the signal, before the listener closes.
    pub grace: Duration,
    /// How long requests in flight may take to finish once the listener is closed.
    pub timeout: Duration,
}

/// Waits for SIGTERM or SIGINT, then drains and stops the server behind `server`.
pub async fn on_signal(
    server: ServerHandle,
    draining: actix_web::web::Data<Draining>,
    settings: ShutdownSettings,
) {
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            log::error!(
                "cannot listen for SIGTERM and SIGINT ({e}); stop this process with SIGKILL"
            );
            return;
        }
    };
    let name = signals.next().await;
    draining.begin();
    log::info!(
        "{name}: not ready any more; serving for {} ms more so that load balancers notice, then \
         finishing requests in flight (up to {} s)",
        settings.grace.as_millis(),
        settings.timeout.as_secs()
    );
    tokio::select! {
        () = tokio::time::sleep(settings.grace) => {}
        name = signals.next() => log::info!("{name} again: closing the listener now"),
    }
    log::info!("refusing new connections; waiting for requests in flight");
    server.stop(true).await;
}

/// SIGTERM (what orchestrators send) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    /// The name of the next signal received.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
