//! Hiding secrets in a config document before it leaves the process.
//!
//! The rule, applied to every object key at any depth (keys compared in
//! lower case with `-` read as `_`):
//!
//! 1. A key containing `password`, `passwd`, `passphrase`, `secret`,
//!    `token`, `private`, `credential`, `authorization`, `api_key`,
//!    `apikey` or `access_key` is secret anywhere.
//! 2. Inside a TLS section (below any key containing `tls`, `ssl` or
//!    `transport_socket`), a key with a `_`-separated word `key` or `keys`
//!    is secret (`key`, `tls_key`, `session_ticket_keys`), unless one of
//!    its words is `public` (`public_key` may be shown). Outside TLS,
//!    `key` alone is left: MOSN uses it for header names
//!    (`{"key": "x-user", "value": "..."}`).
//! 3. Any string holding a PEM private key (`-----BEGIN ... PRIVATE KEY`)
//!    is secret whatever its key, so a key pasted somewhere unexpected
//!    still never shows.
//!
//! A secret's value, whatever its type, becomes `"[redacted]"`; `null`
//! and `""` stay as they are, so "not set" is still visible.
//! `certificate_chain`, `ca_cert` and other certificates are public and
//! shown.

use serde_json::Value;

/// What a secret's value is replaced with.
pub const REDACTED: &str = "[redacted]";

const SECRET_ANYWHERE: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "private",
    "credential",
    "authorization",
    "api_key",
    "apikey",
    "access_key",
];

const TLS_SECTION: &[&str] = &["tls", "ssl", "transport_socket"];

/// Replaces every secret in `value` with [`REDACTED`], in place (the rule
/// is in this module's documentation).
pub fn redact_secrets(value: &mut Value) {
    redact(value, false);
}

fn redact(value: &mut Value, in_tls: bool) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let key = key.to_ascii_lowercase().replace('-', "_");
                if is_secret_key(&key, in_tls) {
                    hide(child);
                } else {
                    let child_in_tls = in_tls || TLS_SECTION.iter().any(|t| key.contains(t));
                    redact(child, child_in_tls);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, in_tls)),
        Value::String(s) if holds_private_key(s) => hide(value),
        _ => {}
    }
}

fn is_secret_key(key: &str, in_tls: bool) -> bool {
    if SECRET_ANYWHERE.iter().any(|word| key.contains(word)) {
        return true;
    }
    if !in_tls {
        return false;
    }
    let mut words = key.split('_');
    let names_a_key = words.clone().any(|w| w == "key" || w == "keys");
    names_a_key && !words.any(|w| w == "public")
}

fn holds_private_key(s: &str) -> bool {
    s.contains("-----BEGIN") && s.contains("PRIVATE KEY")
}

fn hide(value: &mut Value) {
    let unset = value.is_null() || value.as_str().is_some_and(str::is_empty);
    if !unset {
        *value = Value::String(REDACTED.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redacted(mut v: Value) -> Value {
        redact_secrets(&mut v);
        v
    }

    #[test]
    fn tls_keys_at_any_depth_are_hidden_and_certificates_shown() {
        let got = redacted(json!({"servers": [{"listeners": [{"filter_chains": [{
            "tls_context": {"status": true, "cert_chain": "CERT", "private_key": "KEY",
                            "ca_cert": "CA", "key": "K2", "public_key": "PUB",
                            "session_ticket_keys": ["a", "b"]},
            "transport_socket": {"typed_config": {"tls_certificate": {
                "certificate_chain": "CHAIN", "key_file": "/etc/k.pem"}}}
        }]}]}]}));
        let chain = &got["servers"][0]["listeners"][0]["filter_chains"][0];
        let tls = &chain["tls_context"];
        assert_eq!(tls["private_key"], REDACTED);
        assert_eq!(tls["key"], REDACTED);
        assert_eq!(tls["session_ticket_keys"], REDACTED);
        assert_eq!(tls["cert_chain"], "CERT");
        assert_eq!(tls["ca_cert"], "CA");
        assert_eq!(tls["public_key"], "PUB");
        assert_eq!(tls["status"], true);
        let cert = &chain["transport_socket"]["typed_config"]["tls_certificate"];
        assert_eq!(cert["certificate_chain"], "CHAIN");
        assert_eq!(cert["key_file"], REDACTED);
    }

    #[test]
    fn secrets_outside_tls_are_hidden_but_header_keys_are_not() {
        let got = redacted(json!({
            "Password": "p", "api-key": "k", "auth_token": {"nested": 1},
            "client_secret": 7, "empty_password": "", "unset_token": null,
            "request_headers_to_add": [{"header": {"key": "x-user", "value": "v"}}],
            "note": "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"
        }));
        assert_eq!(got["Password"], REDACTED);
        assert_eq!(got["api-key"], REDACTED);
        assert_eq!(got["auth_token"], REDACTED);
        assert_eq!(got["client_secret"], REDACTED);
        assert_eq!(got["empty_password"], "");
        assert_eq!(got["unset_token"], Value::Null);
        assert_eq!(got["request_headers_to_add"][0]["header"]["key"], "x-user");
        assert_eq!(got["note"], REDACTED);
    }
}
