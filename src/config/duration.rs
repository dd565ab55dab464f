//! Durations: `10s`, `500ms`, `1m30s`, or a bare number of seconds.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let shown = crate::error::shown(t);
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return t
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("'{shown}' is not a duration (e.g. 10s, 500ms, 1m30s)"));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("'{shown}' is not a duration (e.g. 10s, 500ms, 1m30s)"))
}

/// Parses a byte count: `65536`, `64K`, `64KiB`, `1M`, `1MiB`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let shown = crate::error::shown(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("'{shown}' is not a byte count (e.g. 65536, 64KiB)")),
    };
    match num.parse::<usize>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if n > 0 && n <= 1 << 30 => Ok(n),
        _ => Err(format!(
            "'{shown}' is not a byte count between 1 and 1GiB (e.g. 65536, 64KiB)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse("abc").is_err());
        assert!(parse("").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("10 parsecs").is_err());
    }

    #[test]
    fn parses_byte_counts() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("2G").is_err());
    }
}
