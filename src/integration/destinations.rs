//! Where a webhook may point: the SSRF guard of the service's only outgoing requests.
//!
//! One parser for the guard and the HTTP client: a URL is read once, as WHATWG says and as the
//! client (reqwest, through the `url` crate) reads it, so backslashes, userinfo, IPv4 written in
//! decimal, octal or hex, IPv4-mapped IPv6, trailing dots and internationalized names are judged
//! by the host the client would connect to. The delivery is then made with that parsed URL, to
//! the addresses just checked (see `webhooks::Clients`), so DNS cannot change in between.
//!
//! Refused unless `LHS_WEBHOOK_ALLOWED_HOSTS` allows them: loopback, link-local (where cloud
//! metadata services live), unspecified and `0.0.0.0/8`, multicast and broadcast addresses, and
//! the names `localhost` and `*.localhost` (RFC 6761: always loopback). Cloud metadata services
//! are refused unless the list names their very address: a host name or a wider network in the
//! list does not open them. Private ranges are allowed: integration engines live there.
//!
//! Names are looked up on threads of their own, never on the blocking pool that every database
//! call shares, and within [`Resolver::TIMEOUT`]: a name whose DNS server never answers is
//! refused when the time is up, and the thread ends whenever the system's resolver gives up.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

/// A webhook's URL as the HTTP client reads it: `http` or `https`, no credentials, a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    url: Url,
}

impl Destination {
    /// Reads `text` as the client would, or says why it cannot be a webhook's URL.
    pub fn parse(text: &str) -> Result<Destination, String> {
        // WHATWG drops tabs and new lines, and trims spaces: refused rather than silently
        // changed, so that what an admin sees is what is called.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".to_owned());
        }
        let url = Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                "must be an absolute http:// or https:// URL".to_owned()
            }
            url::ParseError::EmptyHost => "must name a host".to_owned(),
            url::ParseError::InvalidPort => "has a bad port".to_owned(),
            other => format!("is not a URL the service can call: {other}"),
        })?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("must be http or https, not {other}")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not carry credentials (user:password@); the signature authenticates the \
                 service"
                    .to_owned(),
            );
        }
        if url.host().is_none() {
            return Err("must name a host".to_owned());
        }
        Ok(Destination { url })
    }

    /// The URL the client calls.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host as the client names it: a name (lower case, internationalized names in
    /// punycode, a trailing dot kept), an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port connected to: the URL's, or its scheme's.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The address written in the URL, if it names one rather than a name.
    pub fn address(&self) -> Option<IpAddr> {
        match self.url.host()? {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        }
    }
}

/// Why an address or a name may not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    LinkLocal,
    Unspecified,
    Multicast,
    Metadata,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::Loopback => "loopback",
            Refusal::LinkLocal => "link-local",
            Refusal::Unspecified => "unspecified, or this network",
            Refusal::Multicast => "multicast or broadcast",
            Refusal::Metadata => "a cloud metadata service",
        }
    }
}

/// The documented addresses of cloud metadata and credential services. Most are link-local,
/// refused anyway; they are listed so that a wider network in the allow-list does not open them,
/// and for those outside link-local.
const METADATA_ADDRESSES: &[IpAddr] = &[
    // AWS, Azure, Google Cloud, Oracle Cloud, DigitalOcean, OpenStack and most others.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS ECS task metadata and credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // AWS EKS Pod Identity Agent.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    // Alibaba Cloud.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Azure's platform endpoint (WireServer).
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    // Oracle Cloud Infrastructure Classic.
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // AWS instance metadata over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    // AWS EKS Pod Identity Agent over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
    // Google Cloud's metadata server over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)),
    // Oracle Cloud's instance metadata over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xc1, 0, 0, 0, 0, 0xa9fe, 0xa9fe)),
];

/// Names of metadata services that resolve to them only inside their cloud: refused by name,
/// wherever the service runs.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog"];

/// The IPv4 address an IPv6 address carries to an IPv4 host: IPv4-mapped (`::ffff:a.b.c.d`,
/// which the system connects to as IPv4), IPv4-compatible (`::a.b.c.d`) and the NAT64 prefix
/// (`64:ff9b::a.b.c.d`, which a NAT64 gateway sends on). Judged as that IPv4 address.
fn carried_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let embedded = || Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(embedded());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(embedded());
    }
    None
}

/// The address as judged: an IPv6 address that carries an IPv4 one is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => carried_ipv4(v6).map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Why a receiver at `address` would be the service itself, its machine, or its cloud's
/// metadata; `None` if it may be reached.
pub fn refusal(address: IpAddr) -> Option<Refusal> {
    let address = canonical(address);
    if METADATA_ADDRESSES.contains(&address) {
        return Some(Refusal::Metadata);
    }
    match address {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some(Refusal::Loopback)
            } else if v4.is_link_local() {
                Some(Refusal::LinkLocal)
            } else if v4.octets()[0] == 0 {
                // 0.0.0.0/8 is "this network": `http://0/` and `http://1/` reach the host itself
                // on Linux.
                Some(Refusal::Unspecified)
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some(Refusal::Multicast)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if v6.is_unspecified() {
                Some(Refusal::Unspecified)
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if v6.is_multicast() {
                Some(Refusal::Multicast)
            } else {
                None
            }
        }
    }
}

/// A name without the trailing dot that makes it absolute: `localhost.` is `localhost`.
fn relative(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Why a name may not be reached whatever it resolves to.
fn name_refusal(name: &str) -> Option<Refusal> {
    let name = relative(name);
    if name == "localhost" || name.ends_with(".localhost") {
        Some(Refusal::Loopback)
    } else if METADATA_NAMES.contains(&name) {
        Some(Refusal::Metadata)
    } else {
        None
    }
}

/// Looks a name up: the system's resolver (`getaddrinfo`), or another in tests.
pub type Lookup = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// Looks names up on threads of its own, at most [`Resolver::THREADS`] at once, each within
/// the resolver's timeout.
///
/// Written here rather than taken from an asynchronous DNS crate: the guard must resolve as the
/// system does (`/etc/hosts`, nsswitch, the hospital's DNS search domains), and `getaddrinfo`
/// cannot be cancelled, only waited for somewhere harmless.
#[derive(Clone)]
pub struct Resolver {
    lookup: Arc<Lookup>,
    timeout: Duration,
    threads: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// How long a lookup may take before the name is refused.
    pub const TIMEOUT: Duration = Duration::from_secs(5);
    /// Lookups under way at most; more wait for one to end (within their own timeout).
    pub const THREADS: usize = 16;

    /// The system's resolver.
    pub fn system() -> Resolver {
        Resolver::new(Self::TIMEOUT, |host, port| {
            (host, port).to_socket_addrs().map(Iterator::collect)
        })
    }

    /// A resolver that looks names up with `lookup`, within `timeout`.
    pub fn new(
        timeout: Duration,
        lookup: impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Resolver {
        Resolver {
            lookup: Arc::new(lookup),
            timeout,
            threads: Arc::new(tokio::sync::Semaphore::new(Self::THREADS)),
        }
    }

    /// The addresses of `name`, or why there are none.
    pub async fn lookup(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || {
            format!(
                "names the host {name}, which did not resolve within {} s",
                self.timeout.as_secs_f64()
            )
        };
        let permit = tokio::time::timeout_at(deadline, self.threads.clone().acquire_owned())
            .await
            .map_err(|_| late())?
            .map_err(|e| format!("names the host {name}, which cannot be looked up: {e}"))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (lookup, host) = (self.lookup.clone(), name.to_owned());
        std::thread::Builder::new()
            .name("lhs-dns".to_owned())
            .spawn(move || {
                let addresses = lookup(&host, port);
                // The slot is free once the lookup ends, whether anyone still waits for it.
                drop(permit);
                let _ = answer.send(addresses);
            })
            .map_err(|e| format!("names the host {name}, which cannot be looked up: {e}"))?;
        match tokio::time::timeout_at(deadline, answered).await {
            Err(_) => Err(late()),
            Ok(Err(_)) => Err(format!(
                "names the host {name}, whose lookup ended unanswered"
            )),
            Ok(Ok(Err(e))) => Err(format!(
                "names the host {name}, which does not resolve: {e}"
            )),
            Ok(Ok(Ok(addresses))) if addresses.is_empty() => Err(format!(
                "names the host {name}, which resolves to no address"
            )),
            Ok(Ok(Ok(addresses))) => Ok(addresses),
        }
    }
}

/// The guard: what `LHS_WEBHOOK_ALLOWED_HOSTS` allows, and the resolver names are looked up
/// with.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Names (as the client names them, without a trailing dot) allowed although they are, or
    /// resolve to, loopback, link-local or unspecified addresses.
    allowed_hosts: Vec<String>,
    /// Networks allowed although loopback, link-local or unspecified; a metadata address only
    /// when a network is that one address.
    allowed_networks: Vec<IpNet>,
    pub resolver: Resolver,
}

impl Guard {
    /// The guard `LHS_WEBHOOK_ALLOWED_HOSTS` describes: hosts, addresses or CIDRs,
    /// comma-separated, each read as a URL's host is.
    pub fn parse(allowed: &str) -> Result<Guard, String> {
        let mut hosts = Vec::new();
        let mut networks = Vec::new();
        for entry in allowed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                networks.push(net);
                continue;
            }
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            match Host::parse(bare) {
                Ok(Host::Domain(name)) => hosts.push(relative(&name).to_owned()),
                Ok(Host::Ipv4(v4)) => networks.push(IpNet::from(IpAddr::V4(v4))),
                Ok(Host::Ipv6(v6)) => networks.push(IpNet::from(IpAddr::V6(v6))),
                Err(_) => match bare.parse::<IpAddr>() {
                    Ok(address) => networks.push(IpNet::from(address)),
                    Err(_) => {
                        return Err(format!(
                            "LHS_WEBHOOK_ALLOWED_HOSTS: {entry:?} is not a host name, an \
                             address or a CIDR"
                        ))
                    }
                },
            }
        }
        Ok(Guard {
            allowed_hosts: hosts,
            allowed_networks: networks,
            resolver: Resolver::system(),
        })
    }

    fn allows_host(&self, name: &str) -> bool {
        let name = relative(name);
        self.allowed_hosts.iter().any(|h| h == name)
    }

    fn allows_address(&self, address: IpAddr, why: Refusal) -> bool {
        let judged = canonical(address);
        self.allowed_networks.iter().any(|net| {
            let holds = net.contains(&address) || net.contains(&judged);
            match why {
                Refusal::Metadata => holds && net.prefix_len() == net.max_prefix_len(),
                _ => holds,
            }
        })
    }

    /// Whether `destination`, at `addresses` (its own, or what its name resolved to), may be
    /// reached; why not otherwise.
    pub fn judge(&self, destination: &Destination, addresses: &[IpAddr]) -> Result<(), String> {
        let host = destination.host();
        let allowed_host = destination.address().is_none() && self.allows_host(host);
        if destination.address().is_none() && !allowed_host {
            if let Some(why) = name_refusal(host) {
                return Err(refused(host, why));
            }
        }
        for address in addresses {
            if let Some(why) = refusal(*address) {
                let allowed = match why {
                    Refusal::Metadata => self.allows_address(*address, why),
                    _ => allowed_host || self.allows_address(*address, why),
                };
                if !allowed {
                    return Err(refused(&address.to_string(), why));
                }
            }
        }
        Ok(())
    }

    /// Checks where `destination` points: the addresses to connect to, or why not. Made when a
    /// webhook is written and again before every delivery (DNS can change). A name refused as
    /// such (`localhost`) is not looked up.
    pub async fn check(&self, destination: &Destination) -> Result<Vec<SocketAddr>, String> {
        let port = destination.port();
        let addresses = match destination.address() {
            Some(address) => vec![SocketAddr::new(address, port)],
            None => {
                let host = destination.host();
                if !self.allows_host(host) {
                    if let Some(why) = name_refusal(host) {
                        return Err(refused(host, why));
                    }
                }
                self.resolver.lookup(host, port).await?
            }
        };
        let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
        self.judge(destination, &ips)?;
        Ok(addresses)
    }
}

fn refused(what: &str, why: Refusal) -> String {
    match why {
        Refusal::Metadata => format!(
            "points at {what} ({}), which webhooks may not reach; only \
             LHS_WEBHOOK_ALLOWED_HOSTS naming that very address can allow it",
            why.describe()
        ),
        _ => format!(
            "points at {what} ({}), which webhooks may not reach; LHS_WEBHOOK_ALLOWED_HOSTS can \
             allow it",
            why.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A resolver answering from `table`, recording each name it is asked for.
    fn table(entries: &[(&str, &[&str])]) -> (Resolver, Arc<Mutex<Vec<String>>>) {
        let map: HashMap<String, Vec<IpAddr>> = entries
            .iter()
            .map(|(name, ips)| {
                (
                    (*name).to_owned(),
                    ips.iter()
                        .map(|ip| ip.parse().expect("an address"))
                        .collect(),
                )
            })
            .collect();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let resolver = Resolver::new(Duration::from_secs(2), move |name, port| {
            log.lock().expect("the log").push(name.to_owned());
            map.get(name)
                .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
                .ok_or_else(|| std::io::Error::other("no such name"))
        });
        (resolver, asked)
    }

    fn guard(allowed: &str, resolver: Resolver) -> Guard {
        let mut guard = Guard::parse(allowed).expect("a valid allow-list");
        guard.resolver = resolver;
        guard
    }

    async fn verdict(guard: &Guard, url: &str) -> Result<Vec<SocketAddr>, String> {
        let destination = Destination::parse(url)?;
        guard.check(&destination).await
    }

    /// The host reqwest connects to for `url`: the guard must judge that very host.
    fn client_host(url: &str) -> Option<String> {
        let request = reqwest::Client::new().post(url).build().ok()?;
        request.url().host_str().map(str::to_owned)
    }

    const NAMES: &[(&str, &[&str])] = &[
        ("integration.example.org", &["10.1.2.3"]),
        ("xn--bcher-kva.example", &["10.1.2.4"]),
        ("metadata.example.org", &["169.254.169.254"]),
        ("ecs.example.org", &["169.254.170.2"]),
        ("mixed.example.org", &["10.1.2.5", "127.0.0.1"]),
        ("v6-metadata.example.org", &["fd00:ec2::254"]),
        ("localhost", &["127.0.0.1", "::1"]),
        ("localhost.", &["127.0.0.1"]),
    ];

    #[tokio::test]
    async fn the_guard_judges_the_host_the_client_connects_to() {
        let (resolver, _) = table(NAMES);
        let guard = guard("", resolver);
        // (URL, the host the client connects to, refused?)
        let cases: &[(&str, &str, bool)] = &[
            ("https://10.20.30.40/hook", "10.20.30.40", false),
            (
                "https://integration.example.org/hook",
                "integration.example.org",
                false,
            ),
            ("http://192.168.1.5:8080/x", "192.168.1.5", false),
            ("https://[2001:db8::1]/x", "[2001:db8::1]", false),
            // Backslashes end the host, as they do for the client.
            ("http://127.0.0.1\\@10.20.30.40/", "127.0.0.1", true),
            ("http://10.20.30.40\\@127.0.0.1/", "10.20.30.40", false),
            (
                "http://localhost\\.integration.example.org/",
                "localhost",
                true,
            ),
            // IPv4 written in decimal, octal, hex and short forms.
            ("http://2130706433/", "127.0.0.1", true),
            ("http://0x7f.1/", "127.0.0.1", true),
            ("http://0177.0.0.1/", "127.0.0.1", true),
            ("http://0x7f000001/", "127.0.0.1", true),
            ("http://127.1/", "127.0.0.1", true),
            ("http://0/", "0.0.0.0", true),
            ("http://1/", "0.0.0.1", true),
            ("http://2852039166/", "169.254.169.254", true),
            ("http://0251.0376.0251.0376/", "169.254.169.254", true),
            ("http://167772161/", "10.0.0.1", false),
            // IPv6 carrying IPv4.
            ("http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]", true),
            ("http://[::ffff:a9fe:a9fe]/", "[::ffff:a9fe:a9fe]", true),
            ("http://[::127.0.0.1]/", "[::7f00:1]", true),
            (
                "http://[64:ff9b::169.254.169.254]/",
                "[64:ff9b::a9fe:a9fe]",
                true,
            ),
            ("http://[::ffff:10.1.2.3]/", "[::ffff:a01:203]", false),
            // Trailing dots.
            ("http://localhost./", "localhost.", true),
            (
                "http://metadata.google.internal./",
                "metadata.google.internal.",
                true,
            ),
            ("http://127.0.0.1./", "127.0.0.1", true),
            // Internationalized names, as punycode.
            ("http://ｌｏｃａｌｈｏｓｔ/", "localhost", true),
            ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "localhost", true),
            ("http://api.ｌｏｃａｌｈｏｓｔ/", "api.localhost", true),
            ("https://bücher.example/", "xn--bcher-kva.example", false),
            (
                "https://xn--bcher-kva.example/",
                "xn--bcher-kva.example",
                false,
            ),
            ("http://%6c%6f%63%61%6c%68%6f%73%74/", "localhost", true),
            // Cloud metadata, IPv4 and IPv6, by address and by name.
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
                true,
            ),
            ("http://169.254.170.2/v2/credentials", "169.254.170.2", true),
            (
                "http://100.100.100.200/latest/meta-data/",
                "100.100.100.200",
                true,
            ),
            ("http://168.63.129.16/", "168.63.129.16", true),
            ("http://192.0.0.192/", "192.0.0.192", true),
            (
                "http://[fd00:ec2::254]/latest/meta-data/",
                "[fd00:ec2::254]",
                true,
            ),
            ("http://[fd20:ce::254]/", "[fd20:ce::254]", true),
            ("http://[fd00:c1::a9fe:a9fe]/", "[fd00:c1::a9fe:a9fe]", true),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                "metadata.google.internal",
                true,
            ),
            ("http://metadata.example.org/", "metadata.example.org", true),
            ("http://ecs.example.org/", "ecs.example.org", true),
            (
                "http://v6-metadata.example.org/",
                "v6-metadata.example.org",
                true,
            ),
            // Link-local generally, loopback, unspecified, multicast.
            ("http://169.254.1.1/", "169.254.1.1", true),
            ("http://[fe80::1]/", "[fe80::1]", true),
            ("http://[febf::1]/", "[febf::1]", true),
            ("http://[::1]/", "[::1]", true),
            ("http://[::]/", "[::]", true),
            ("http://0.0.0.0:8080/", "0.0.0.0", true),
            ("http://224.0.0.1/", "224.0.0.1", true),
            ("http://255.255.255.255/", "255.255.255.255", true),
            // One bad address among good ones is enough.
            ("http://mixed.example.org/", "mixed.example.org", true),
            ("http://nonexistent.invalid/", "nonexistent.invalid", true),
        ];
        for (url, host, refused) in cases {
            assert_eq!(
                client_host(url).as_deref(),
                Some(*host),
                "the client's host of {url}"
            );
            let destination = Destination::parse(url).expect("a well-formed URL");
            assert_eq!(destination.host(), *host, "the guard's host of {url}");
            let verdict = guard.check(&destination).await;
            assert_eq!(verdict.is_err(), *refused, "{url}: {verdict:?}");
        }
    }

    #[test]
    fn urls_must_be_http_without_credentials() {
        for (url, why) in [
            ("ftp://example.org/hook", "must be http or https"),
            ("file:///etc/passwd", "must be http or https"),
            ("example.org/hook", "absolute"),
            ("https://user:pw@example.org/", "credentials"),
            ("https://user@example.org/", "credentials"),
            ("https://:pw@example.org/", "credentials"),
            ("http:// example.org/", "spaces"),
            ("http://exam\tple.org/", "spaces"),
            ("http://[::1/", "not a URL"),
            ("http://example.org:99999/", "port"),
            ("http://[fe80::1%25eth0]/", "not a URL"),
            ("http:///", "host"),
        ] {
            let error = Destination::parse(url).expect_err(url);
            assert!(error.contains(why), "{url}: {error}");
        }
        let parsed = Destination::parse("http://[::1]:8080/x").expect("valid");
        assert_eq!((parsed.host(), parsed.port()), ("[::1]", 8080));
        assert_eq!(
            Destination::parse("https://a.example").map(|d| d.port()),
            Ok(443)
        );
    }

    #[tokio::test]
    async fn names_refused_as_names_are_not_looked_up() {
        let (resolver, asked) = table(NAMES);
        let guard = guard("", resolver);
        for url in [
            "http://localhost/",
            "http://localhost./",
            "http://ｌｏｃａｌｈｏｓｔ/",
            "http://metadata.google.internal/",
        ] {
            assert!(verdict(&guard, url).await.is_err(), "{url}");
        }
        assert!(verdict(&guard, "https://bücher.example/").await.is_ok());
        assert_eq!(
            *asked.lock().expect("the log"),
            vec!["xn--bcher-kva.example".to_owned()],
            "only the allowed name was looked up, in punycode"
        );
    }

    #[tokio::test]
    async fn the_allow_list_opens_what_it_names_and_metadata_only_by_address() {
        let (resolver, _) = table(NAMES);
        let loopback = guard("127.0.0.1", resolver.clone());
        assert!(verdict(&loopback, "http://127.0.0.1:9/x").await.is_ok());
        assert!(verdict(&loopback, "http://2130706433:9/x").await.is_ok());
        assert!(verdict(&loopback, "http://[::ffff:127.0.0.1]:9/x")
            .await
            .is_ok());
        assert!(verdict(&loopback, "http://127.0.0.2/x").await.is_err());
        assert!(verdict(&loopback, "http://localhost/x").await.is_err());

        let by_name = guard("LOCALHOST.", resolver.clone());
        assert!(verdict(&by_name, "http://localhost/x").await.is_ok());
        assert!(verdict(&by_name, "http://localhost./x").await.is_ok());
        assert!(verdict(&by_name, "http://127.0.0.1/x").await.is_err());

        let link_local = guard("169.254.0.0/16, fe80::/10", resolver.clone());
        assert!(verdict(&link_local, "http://169.254.10.10/").await.is_ok());
        assert!(verdict(&link_local, "http://[fe80::1]/").await.is_ok());
        assert!(
            verdict(&link_local, "http://169.254.169.254/")
                .await
                .is_err(),
            "a wider network does not open a metadata address"
        );
        let names_metadata = guard("metadata.example.org", resolver.clone());
        assert!(verdict(&names_metadata, "http://metadata.example.org/")
            .await
            .is_err());

        let exactly = guard("169.254.169.254,[fd00:ec2::254]", resolver);
        assert!(verdict(&exactly, "http://169.254.169.254/").await.is_ok());
        assert!(verdict(&exactly, "http://[fd00:ec2::254]/").await.is_ok());

        assert!(Guard::parse("not a host!").is_err());
        assert!(Guard::parse("10.0.0.0/8, intranet.example.org, ::1").is_ok());
    }

    #[tokio::test]
    async fn a_lookup_that_never_ends_is_refused_in_time_off_the_blocking_pool() {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let seen = threads.clone();
        let resolver = Resolver::new(Duration::from_millis(200), move |_, _| {
            seen.lock()
                .expect("the log")
                .push(std::thread::current().name().map(str::to_owned));
            std::thread::sleep(Duration::from_secs(3));
            Ok(vec![SocketAddr::from(([10, 1, 2, 3], 80))])
        });
        let guard = guard("", resolver);
        let started = std::time::Instant::now();

        let verdict = verdict(&guard, "http://slow.example.org/").await;

        assert!(started.elapsed() < Duration::from_secs(2));
        let why = verdict.expect_err("refused when the time is up");
        assert!(why.contains("did not resolve within 0.2 s"), "{why}");
        assert_eq!(
            *threads.lock().expect("the log"),
            vec![Some("lhs-dns".to_owned())]
        );
    }
}
