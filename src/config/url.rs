//! The `http://` URLs of `ready = { http = "..." }` and the health probes.
//!
//! Only plain `http://` on a literal address (or `localhost`): pyinit is a
//! static glibc binary, whose name resolution needs NSS modules that a
//! `FROM scratch` image does not have, and a readiness probe of a process
//! in the same container never needs TLS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A validated `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub addr: SocketAddr,
    /// The host as written (`localhost`, `127.0.0.1`, `[::1]`), for the
    /// `Host` header.
    pub host: String,
    /// The path and query, `/` when absent.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let bad = |why: &str| format!("'{}' {why}", crate::error::shown(text));
        let rest = text.strip_prefix("http://").ok_or_else(|| {
            bad("is not an http:// URL (https and other schemes are not supported)")
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("has user information, which is not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(|e| bad(&e))?;
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            literal.unwrap_or(host).parse::<IpAddr>().map_err(|_| {
                bad("needs a literal IP address or localhost as its host (pyinit does not resolve names)")
            })?
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("has blanks or control characters in its path"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(HttpUrl {
            addr: SocketAddr::new(ip, port),
            host: authority.to_string(),
            path,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    if authority.is_empty() {
        return Err("has no host".into());
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let after = &authority[end + 1..];
                match after.strip_prefix(':') {
                    Some(p) => (&authority[..=end], Some(p)),
                    None if after.is_empty() => (authority, None),
                    None => return Err("has text after its IPv6 address".into()),
                }
            }
            None => return Err("has an unclosed '['".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| "has a port that is not 1-65535".to_string())?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_literal_addresses_and_localhost() {
        let u = HttpUrl::parse("http://127.0.0.1:8000/health").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(u.path, "/health");
        assert_eq!(u.host, "127.0.0.1:8000");
        let u = HttpUrl::parse("http://localhost").unwrap();
        assert_eq!(u.addr, "127.0.0.1:80".parse().unwrap());
        assert_eq!(u.path, "/");
        let u = HttpUrl::parse("http://[::1]:9000?x=1").unwrap();
        assert_eq!(u.addr, "[::1]:9000".parse().unwrap());
        assert_eq!(u.path, "/?x=1");
    }

    #[test]
    fn rejects_what_a_static_binary_cannot_reach() {
        for (url, why) in [
            ("https://127.0.0.1/", "http://"),
            ("127.0.0.1:80", "http://"),
            ("http://example.com/", "literal IP"),
            ("http://127.0.0.1:0/", "port"),
            ("http://127.0.0.1:99999/", "port"),
            ("http://[::1/", "unclosed"),
            ("http:///x", "no host"),
            ("http://u@127.0.0.1/", "user"),
            ("http://127.0.0.1/a b", "blanks"),
        ] {
            let e = HttpUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
