//! `--env-file`: `KEY=VALUE` lines as in `.env` files (docker, honcho).
//!
//! `#` comments and blank lines are skipped, an `export ` prefix is allowed,
//! and a value wrapped in single or double quotes loses its quotes (double
//! quotes also understand `\n`, `\"` and `\\`). No variable expansion.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

pub fn parse(text: &[u8]) -> Result<Vec<(OsString, OsString)>, String> {
    let mut vars = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = trim(raw.strip_suffix(b"\r").unwrap_or(raw));
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let line = line.strip_prefix(b"export ").map_or(line, trim);
        let eq = line
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", i + 1))?;
        let key = trim(&line[..eq]);
        let valid_key = !key.is_empty()
            && !key[0].is_ascii_digit()
            && key.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_key {
            return Err(format!(
                "line {}: '{}' is not a variable name",
                i + 1,
                String::from_utf8_lossy(key)
            ));
        }
        let value = unquote(trim(&line[eq + 1..]))
            .ok_or_else(|| format!("line {}: unterminated quote", i + 1))?;
        vars.push((OsString::from_vec(key.to_vec()), OsString::from_vec(value)));
    }
    Ok(vars)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn unquote(v: &[u8]) -> Option<Vec<u8>> {
    match v.first() {
        Some(b'\'') => {
            let end = v[1..].iter().position(|&b| b == b'\'')?;
            Some(v[1..1 + end].to_vec())
        }
        Some(b'"') => {
            let mut out = Vec::new();
            let mut it = v[1..].iter();
            while let Some(&b) = it.next() {
                match b {
                    b'"' => return Some(out),
                    b'\\' => match it.next()? {
                        b'n' => out.push(b'\n'),
                        &c => out.push(c),
                    },
                    c => out.push(c),
                }
            }
            None
        }
        _ => {
            // An unquoted value ends at an inline ` #` comment.
            let end = v
                .windows(2)
                .position(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
                .unwrap_or(v.len());
            Some(trim(&v[..end]).to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<(String, String)>, String> {
        parse(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
                .collect()
        })
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn parses_dotenv_lines() {
        let text =
            "# comment\n\nA=1\nexport B = two words \nC='x # y'\nD=\"a\\nb\"\nE=\nF=v # note\r\n";
        assert_eq!(
            p(text),
            Ok(vec![
                kv("A", "1"),
                kv("B", "two words"),
                kv("C", "x # y"),
                kv("D", "a\nb"),
                kv("E", ""),
                kv("F", "v"),
            ])
        );
    }

    #[test]
    fn reports_bad_lines_with_numbers() {
        assert_eq!(p("A=1\nnope\n"), Err("line 2: expected KEY=VALUE".into()));
        assert_eq!(p("1A=x"), Err("line 1: '1A' is not a variable name".into()));
        assert_eq!(p("A=\"open"), Err("line 1: unterminated quote".into()));
    }
}
