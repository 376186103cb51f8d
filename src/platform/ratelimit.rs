//! Rate limits on what anyone may send: anonymous feedback and failed authentications, per client
//! address (governor's GCRA, per process: with N replicas a client may send N times the limit).
//!
//! The client address is the peer's; `X-Forwarded-For` counts only when the peer is a trusted
//! proxy (`LHS_TRUSTED_PROXIES`), and then its rightmost address that is not itself a trusted
//! proxy is the client. Answers of limited routes carry the IETF RateLimit headers
//! (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy` and `RateLimit`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

use crate::platform::error::ApiError;
use crate::platform::telemetry;

type Keyed = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// A rate such as `120/minute`: at most that many in the period, all of them at once if need be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a rate such as 120/minute"))?;
        let count: NonZeroU32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a positive whole number"))?;
        let period = match period.trim() {
            "second" | "s" => Duration::from_secs(1),
            "minute" | "min" | "m" => Duration::from_secs(60),
            "hour" | "h" => Duration::from_secs(3600),
            other => humantime::parse_duration(other)
                .map_err(|_| format!("{other:?} is not second, minute, hour or a duration"))?,
        };
        if period.is_zero() {
            return Err("the period must be longer than zero".to_owned());
        }
        Ok(Rate { count, period })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.count, self.period.as_secs())
    }
}

/// One named limit, keyed by client address.
pub struct Limit {
    name: &'static str,
    rate: Rate,
    limiter: Keyed,
}

/// What a limited request is told (the RateLimit headers), or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotum {
    pub policy: String,
    pub state: String,
}

impl Quotum {
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let value = |text: &str| {
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        };
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                value(&self.policy),
            ),
            (HeaderName::from_static("ratelimit"), value(&self.state)),
        ]
    }
}

impl Limit {
    pub fn new(name: &'static str, rate: Rate) -> Limit {
        let per_cell = rate.period / rate.count.get();
        let quota = Quota::with_period(per_cell.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(rate.count))
            .allow_burst(rate.count);
        Limit {
            name,
            rate,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    fn policy(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.name,
            self.rate.count,
            self.rate.period.as_secs().max(1)
        )
    }

    /// Takes one request of `client`'s quota: the headers to send, or 429.
    pub fn take(&self, client: IpAddr) -> Result<Quotum, ApiError> {
        let per_cell = self.rate.period / self.rate.count.get();
        match self.limiter.check_key(&client) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.rate.count.get().saturating_sub(remaining);
                // Seconds until the whole quota is available again.
                let reset = (per_cell * used).as_secs_f64().ceil() as u64;
                Ok(Quotum {
                    policy: self.policy(),
                    state: format!("\"{}\";r={remaining};t={reset}", self.name),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                telemetry::record_rate_limited(self.name);
                Err(ApiError::TooManyRequests {
                    retry_after: seconds,
                    policy: self.policy(),
                    state: format!("\"{}\";r=0;t={seconds}", self.name),
                })
            }
        }
    }

    /// Forgets clients whose quota is whole again (keeps memory bounded).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

/// The limits of one process.
pub struct Limits {
    /// Feedback sent without a token; `None` when unlimited.
    pub anonymous_feedback: Option<Limit>,
    /// Requests whose bearer token was refused.
    pub failed_authentication: Limit,
    /// Check-ins with a round's code, by anyone but organizers; `None` when unlimited.
    pub checkin: Option<Limit>,
    trusted_proxies: Vec<IpNet>,
}

impl Limits {
    pub fn new(feedback: Option<Rate>, failed_authentication: Rate, trusted: Vec<IpNet>) -> Self {
        Limits {
            anonymous_feedback: feedback.map(|rate| Limit::new("feedback", rate)),
            failed_authentication: Limit::new("authentication", failed_authentication),
            checkin: None,
            trusted_proxies: trusted,
        }
    }

    /// With a limit on check-ins (`LHS_CHECKIN_RATE_LIMIT`); `None`: unlimited.
    pub fn with_checkin(mut self, rate: Option<Rate>) -> Self {
        self.checkin = rate.map(|rate| Limit::new("checkin", rate));
        self
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// The client's address: the peer, or what a trusted proxy says in `X-Forwarded-For`.
    pub fn client(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if !self.trusted(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|address| !self.trusted(*address))
            .unwrap_or(peer)
    }

    pub fn forget_idle(&self) {
        if let Some(limit) = &self.anonymous_feedback {
            limit.forget_idle();
        }
        self.failed_authentication.forget_idle();
        if let Some(limit) = &self.checkin {
            limit.forget_idle();
        }
    }
}

/// Parses `LHS_TRUSTED_PROXIES`: CIDRs or single addresses, separated by commas.
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{part:?} is not an IP address or a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_as_a_count_per_period() {
        let rate: Rate = "120/minute".parse().expect("a rate");
        assert_eq!(rate.count.get(), 120);
        assert_eq!(rate.period, Duration::from_secs(60));
        assert!("0/minute".parse::<Rate>().is_err());
        assert!("ten/minute".parse::<Rate>().is_err());
        assert_eq!(
            "5/10s".parse::<Rate>().map(|r| r.period),
            Ok(Duration::from_secs(10))
        );
    }

    #[test]
    fn a_burst_up_to_the_quota_passes_and_the_next_is_refused() {
        let limit = Limit::new("feedback", "3/minute".parse().expect("a rate"));
        let client = IpAddr::from([10, 0, 0, 1]);
        for left in [2, 1, 0] {
            let quotum = limit.take(client).expect("within the quota");
            assert!(quotum.state.contains(&format!("r={left}")), "{quotum:?}");
        }
        match limit.take(client) {
            Err(ApiError::TooManyRequests { retry_after, .. }) => assert!(retry_after >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(
            limit.take(IpAddr::from([10, 0, 0, 2])).is_ok(),
            "per client"
        );
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let nets = parse_networks("10.0.0.0/8, 192.168.1.5").expect("valid");
        assert_eq!(nets.len(), 2);
        assert!(parse_networks("not-an-ip").is_err());
        assert!(parse_networks("").expect("empty is fine").is_empty());
    }
}
