//! Rate limits on what anyone may send: anonymous feedback and failed authentications, per client
//! (governor's GCRA, per process: with N replicas a client may send N times the limit).
//!
//! Who the client is, so that it cannot choose a fresh budget:
//! - an IPv4 address, or the /64 network of an IPv6 address (the smallest allocation a
//!   subscriber gets, whose 2^64 addresses are all one client's);
//! - IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`, what a dual-stack socket reports) are the
//!   IPv4 address they carry, for the key and for matching trusted proxies;
//! - the peer, unless it is a trusted proxy (`LHS_TRUSTED_PROXIES`): then `X-Forwarded-For` is
//!   read from the right, each trusted proxy skipped, and the first entry that is not a trusted
//!   proxy's bare address is the client. An `address:port` entry is that address; an entry that
//!   is no address at all is keyed by the trusted hop that wrote it (all such clients of one
//!   proxy share its budget), so that nothing a client writes into the header picks its key.
//!
//! Memory is bounded: each limit tracks at most [`MAX_TRACKED_CLIENTS`] clients. When that many
//! are tracked, the quarter whose quotas are nearest to whole again are forgotten (a forgotten
//! client starts again with a whole quota, as it soon would have anyway): a flood of new
//! addresses costs a fixed amount of memory, and the clients being limited, whose quotas are
//! furthest from whole, are the last to go.
//!
//! Answers of limited routes carry the IETF RateLimit headers
//! (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy` and `RateLimit`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use ipnet::{IpNet, Ipv4Net};

use crate::platform::error::ApiError;
use crate::platform::telemetry;

/// The most clients one limit keeps a quota for (see the module's documentation).
pub const MAX_TRACKED_CLIENTS: usize = 100_000;
/// Independent locks per limit, so that workers rarely wait for each other.
const SHARDS: usize = 16;

type Keyed = RateLimiter<ClientKey, Tracked, DefaultClock, StateInformationMiddleware>;

/// What a client is limited by: an IPv4 address, or the /64 network of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6Network(u64),
}

impl ClientKey {
    pub fn of(address: IpAddr) -> ClientKey {
        match canonical(address) {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            // The top 64 bits: the network, whatever the interface identifier.
            IpAddr::V6(v6) => ClientKey::V6Network((u128::from(v6) >> 64) as u64),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is; others as they are.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The quotas of at most [`MAX_TRACKED_CLIENTS`] clients: governor's state (each client's
/// theoretical arrival time, in nanoseconds since the limiter started) in sharded maps.
///
/// Written here because governor's own keyed stores grow with every new key until they are
/// swept, and a general-purpose cache would evict by recency or frequency; this one evicts the
/// clients whose quotas are nearest to whole, which a limiter loses least by forgetting.
pub struct Tracked {
    shards: Box<[Mutex<HashMap<ClientKey, u64, foldhash::fast::RandomState>>]>,
    per_shard: usize,
    /// Picks the shard; randomly seeded, so that clients cannot aim at one shard.
    hasher: foldhash::fast::RandomState,
}

impl Tracked {
    fn new(capacity: usize) -> Tracked {
        Tracked {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Default::default())))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(4),
            hasher: Default::default(),
        }
    }

    fn shard(
        &self,
        key: &ClientKey,
    ) -> &Mutex<HashMap<ClientKey, u64, foldhash::fast::RandomState>> {
        let index = (self.hasher.hash_one(key) >> 32) as usize % self.shards.len();
        &self.shards[index]
    }
}

/// Makes room in a full shard: forgets the quarter of its clients whose arrival times are the
/// earliest (their quotas are the nearest to whole). Once per quarter of a shard's inserts, so
/// the cost per new client stays constant.
fn make_room(map: &mut HashMap<ClientKey, u64, foldhash::fast::RandomState>, capacity: usize) {
    let forget = map.len().saturating_sub(capacity * 3 / 4).max(1);
    let mut times: Vec<u64> = map.values().copied().collect();
    let (_, &mut threshold, _) = times.select_nth_unstable(forget - 1);
    let mut forgotten = 0;
    map.retain(|_, time| {
        if forgotten < forget && *time <= threshold {
            forgotten += 1;
            false
        } else {
            true
        }
    });
}

impl StateStore for Tracked {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = map.get(key).copied();
        // A refused request changes no state: nothing is stored for it.
        let (outcome, next) = f(previous.map(Nanos::from))?;
        if previous.is_none() && map.len() >= self.per_shard {
            make_room(&mut map, self.per_shard);
        }
        map.insert(*key, u64::from(next));
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for Tracked {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, time| *time > drop_below);
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

/// One named limit, keyed by client (see [`ClientKey`]).
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
    /// Adds the RateLimit headers of a limited request (`quotum`, if it was limited) to its
    /// answer, whatever the answer is.
    pub fn added_to(
        quotum: Option<Quotum>,
        response: Result<HttpResponse, ApiError>,
    ) -> Result<HttpResponse, ApiError> {
        let Some(quotum) = quotum else {
            return response;
        };
        let mut response = match response {
            Ok(response) => response,
            Err(error) => actix_web::ResponseError::error_response(&error),
        };
        for (name, value) in quotum.headers() {
            response.headers_mut().insert(name, value);
        }
        Ok(response)
    }

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
            limiter: RateLimiter::<_, _, _, NoOpMiddleware<<DefaultClock as Clock>::Instant>>::new(
                quota,
                Tracked::new(MAX_TRACKED_CLIENTS),
                DefaultClock::default(),
            )
            .with_middleware::<StateInformationMiddleware>(),
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
        match self.limiter.check_key(&ClientKey::of(client)) {
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

    /// How many clients this limit keeps a quota for (at most [`MAX_TRACKED_CLIENTS`]).
    pub fn tracked(&self) -> usize {
        self.limiter.len()
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
    /// Sign-ins started on the pages (`GET /signin`); `None` when unlimited.
    pub signin: Option<Limit>,
    trusted_proxies: Vec<IpNet>,
}

impl Limits {
    pub fn new(feedback: Option<Rate>, failed_authentication: Rate, trusted: Vec<IpNet>) -> Self {
        Limits {
            anonymous_feedback: feedback.map(|rate| Limit::new("feedback", rate)),
            failed_authentication: Limit::new("authentication", failed_authentication),
            checkin: None,
            signin: None,
            trusted_proxies: trusted,
        }
    }

    /// With a limit on check-ins (`LHS_CHECKIN_RATE_LIMIT`); `None`: unlimited.
    pub fn with_checkin(mut self, rate: Option<Rate>) -> Self {
        self.checkin = rate.map(|rate| Limit::new("checkin", rate));
        self
    }

    /// With a limit on sign-ins started (`LHS_SIGNIN_RATE_LIMIT`); `None`: unlimited.
    pub fn with_signin(mut self, rate: Option<Rate>) -> Self {
        self.signin = rate.map(|rate| Limit::new("signin", rate));
        self
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// The client's address: the peer, or what the trusted proxies in front of it say in
    /// `X-Forwarded-For` (see the module's documentation).
    pub fn client(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        self.client_behind(peer, req.headers().get_all("x-forwarded-for"))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` field lines in the order received.
    pub fn client_behind<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return peer;
        }
        // The nearest trusted hop so far: it wrote the entry to the left of its own.
        let mut reporter = peer;
        // Later lines were appended later, like later entries of one line.
        for line in forwarded.rev() {
            let Ok(line) = line.to_str() else {
                return reporter;
            };
            // Empty list elements are allowed by the list syntax (RFC 9110 §5.6.1).
            for entry in line.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
                match forwarded_entry(entry) {
                    Entry::Address(address) if self.trusted(address) => reporter = address,
                    Entry::Address(address) | Entry::WithPort(address) => return address,
                    Entry::Unreadable => return reporter,
                }
            }
        }
        // Every hop is trusted: the client is the first of them.
        reporter
    }
}

/// One entry of `X-Forwarded-For`, as [`Limits::client_behind`] reads it.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    /// A bare address (an IPv6 one possibly in brackets).
    Address(IpAddr),
    /// `address:port` or `[address]:port`, as some proxies write: the client, whatever the
    /// address, and keyed by the address alone (the port changes with every connection).
    WithPort(IpAddr),
    Unreadable,
}

fn forwarded_entry(entry: &str) -> Entry {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Entry::Address(canonical(address));
    }
    if let Some(address) = entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
    {
        return Entry::Address(canonical(IpAddr::V6(address)));
    }
    match entry.parse::<SocketAddr>() {
        Ok(socket) => Entry::WithPort(canonical(socket.ip())),
        Err(_) => Entry::Unreadable,
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
                .map(canonical_network)
                .map_err(|_| format!("{part:?} is not an IP address or a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

/// A network inside `::ffff:0:0/96` as the IPv4 network it maps, so that it matches the
/// canonical addresses it is compared with.
fn canonical_network(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
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

    fn behind(limits: &Limits, peer: &str, lines: &[&str]) -> IpAddr {
        let values: Vec<HeaderValue> = lines
            .iter()
            .map(|line| HeaderValue::from_str(line).expect("a header value"))
            .collect();
        limits.client_behind(peer.parse().expect("an address"), values.iter())
    }

    fn limits_behind(trusted: &str) -> Limits {
        let rate: Rate = "3/minute".parse().expect("a rate");
        Limits::new(
            Some(rate),
            rate,
            parse_networks(trusted).expect("trusted proxies"),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_ipv6_client_is_its_64_network_and_a_mapped_address_its_ipv4_address() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:10.0.0.5")),
            ClientKey::of(ip("10.0.0.5"))
        );
        assert_ne!(ClientKey::of(ip("10.0.0.5")), ClientKey::of(ip("10.0.0.6")));

        let limit = Limit::new("feedback", "2/minute".parse().expect("a rate"));
        assert!(limit.take(ip("2001:db8::1")).is_ok());
        assert!(limit.take(ip("2001:db8::2")).is_ok());
        assert!(
            limit.take(ip("2001:db8::3")).is_err(),
            "every address of a /64 shares one quota"
        );
        assert!(limit.take(ip("2001:db8:0:1::1")).is_ok(), "another /64");
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_trusted_proxies_only() {
        let limits = limits_behind("10.0.0.0/8, 192.0.2.1");
        // From an untrusted peer the header is ignored.
        assert_eq!(
            behind(&limits, "203.0.113.9", &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // The rightmost untrusted entry is the client; what it put to its left is not.
        assert_eq!(
            behind(&limits, "10.0.0.2", &["6.6.6.6, 198.51.100.7, 10.0.0.3"]),
            ip("198.51.100.7")
        );
        // Several field lines are one list, later lines appended later.
        assert_eq!(
            behind(
                &limits,
                "10.0.0.2",
                &["6.6.6.6", "198.51.100.7", "192.0.2.1"]
            ),
            ip("198.51.100.7")
        );
        // Empty elements are skipped; every hop trusted: the first of them.
        assert_eq!(
            behind(&limits, "10.0.0.2", &[" , 10.1.1.1,,"]),
            ip("10.1.1.1")
        );
        assert_eq!(behind(&limits, "10.0.0.2", &[]), ip("10.0.0.2"));
    }

    #[test]
    fn an_unreadable_entry_ends_the_chain_and_cannot_pick_the_key() {
        let limits = limits_behind("10.0.0.0/8");
        // Garbage is keyed by the trusted hop that wrote it, whatever the client sent before.
        for sent in ["garbage", "unknown", "1.2.3.4.5", "fe80::1%eth0", "\"x\""] {
            assert_eq!(
                behind(
                    &limits,
                    "10.0.0.2",
                    &[&format!("7.7.7.7, {sent}, 10.0.0.3")]
                ),
                ip("10.0.0.3"),
                "{sent}"
            );
        }
        // address:port is the client, keyed by the address whatever the port...
        assert_eq!(
            behind(&limits, "10.0.0.2", &["7.7.7.7, 198.51.100.7:51234"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind(&limits, "10.0.0.2", &["7.7.7.7, [2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        // ...and ends the chain even when the address is a trusted one.
        assert_eq!(
            behind(&limits, "10.0.0.2", &["7.7.7.7, 10.0.0.9:80"]),
            ip("10.0.0.9")
        );
        // Bracketed IPv6 without a port is a plain address.
        assert_eq!(
            behind(&limits, "10.0.0.2", &["[2001:db8::8]"]),
            ip("2001:db8::8")
        );
        // A line that is not text ends the chain at the hop that sent it.
        let values = [HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes")];
        assert_eq!(
            limits.client_behind(ip("10.0.0.2"), values.iter()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn mapped_addresses_match_trusted_proxies_and_are_reported_as_ipv4() {
        let limits = limits_behind("10.0.0.0/8");
        assert_eq!(
            behind(&limits, "::ffff:10.0.0.5", &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind(&limits, "::ffff:10.0.0.5", &["::ffff:198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind(&limits, "::ffff:203.0.113.1", &["1.1.1.1"]),
            ip("203.0.113.1")
        );
        // A trusted network written as mapped IPv6 matches IPv4 peers.
        let mapped = limits_behind("::ffff:10.0.0.0/104");
        assert_eq!(
            behind(&mapped, "10.0.0.5", &["198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_limit_tracks_a_bounded_number_of_clients_and_keeps_the_limited_ones() {
        let limit = Limit::new("authentication", "3/minute".parse().expect("a rate"));
        let abuser = ip("198.51.100.66");
        for _ in 0..3 {
            limit.take(abuser).expect("within the quota");
        }
        assert!(limit.take(abuser).is_err());
        for n in 0..(2 * MAX_TRACKED_CLIENTS as u32) {
            let _ = limit.take(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + n)));
        }
        assert!(
            limit.tracked() <= MAX_TRACKED_CLIENTS,
            "{} clients tracked",
            limit.tracked()
        );
        assert!(
            limit.take(abuser).is_err(),
            "a flood of new addresses does not give the limited client a whole quota again"
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
