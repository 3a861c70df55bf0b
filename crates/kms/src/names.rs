//! Small syntax checks shared by the rules: environment-variable names, Kubernetes object names,
//! DNS names, UUIDs, Go booleans, and "did you mean" suggestions.

use std::net::IpAddr;

/// `^[A-Za-z_][A-Za-z0-9_]*$`: Rook turns every connectionDetails key into an environment variable.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Kubernetes object name (RFC 1123 subdomain): what a Secret can be called.
pub fn is_object_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// A host name as TLS verification accepts it (letters in any case, digits, `-`, dots; an optional
/// leading `*.` wildcard is not a server name and is refused).
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        })
}

/// A server name for TLS: a DNS name or an IP address.
pub fn is_server_name(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || is_dns_name(s)
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Go's `strconv.ParseBool`, which Vault's client uses for `VAULT_SKIP_VERIFY`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The candidate closest to `given` when it is plausibly a typo: equal ignoring case, or within
/// edit distance 2. Long inputs are not compared (a hostile key must not cost quadratic time).
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if given.len() > 64 {
        return None;
    }
    let lower = given.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == given {
            continue;
        }
        let d = if c.to_ascii_lowercase() == lower { 0 } else { strsim::levenshtein(&lower, &c.to_ascii_lowercase()) };
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("VAULT_ADDR", true)]
    #[case("_x1", true)]
    #[case("1ABC", false)]
    #[case("VAULT-ADDR", false)]
    #[case("", false)]
    #[case("a b", false)]
    fn env_names(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_env_name(s), ok);
    }

    #[rstest]
    #[case("vault-ca", true)]
    #[case("vault.ca.v1", true)]
    #[case("Vault", false)]
    #[case("/etc/vault/vault.ca", false)]
    #[case("-x", false)]
    fn object_names(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_object_name(s), ok);
    }

    #[rstest]
    #[case("vault.example.com", true)]
    #[case("10.0.0.1", true)]
    #[case("::1", true)]
    #[case("bad_name", false)]
    #[case("https://x", false)]
    fn server_names(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_server_name(s), ok);
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("0f0e1d2c-3b4a-5968-7766-554433221100"));
        assert!(!is_uuid("0f0e1d2c3b4a5968-7766-554433221100"));
        assert!(!is_uuid("0f0e1d2c-3b4a-5968-7766-55443322110g"));
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }

    #[test]
    fn suggestions() {
        let keys = ["VAULT_ADDR", "VAULT_BACKEND", "VAULT_BACKEND_PATH"];
        assert_eq!(suggest("VAULT_ADRR", keys), Some("VAULT_ADDR"));
        assert_eq!(suggest("vault_addr", keys), Some("VAULT_ADDR"));
        assert_eq!(suggest("SOMETHING_ELSE", keys), None);
        assert_eq!(suggest("VAULT_ADDR", keys), None);
    }
}
