//! Verifying that a webhook comes from the carrier. Each carrier signs its own way:
//! - Twilio (and SignalWire in its compatibility form): HMAC-SHA1 with the auth token over the
//!   full URL followed by every POST parameter, name then value, sorted by name; base64.
//! - SignalWire also signs JSON bodies: hex HMAC-SHA1 over the URL followed by the raw body.
//! - Plivo (V3): HMAC-SHA256 with the auth token over the URL with its query sorted, the sorted
//!   parameters, and the nonce header; base64; the header may list several signatures.
//! - Telnyx: Ed25519 over `timestamp|body` with Telnyx's key pair; the account holds the public
//!   key, and the timestamp must be recent.
//!
//! Every comparison is constant-time (`ring::hmac::verify`, `ring::signature`).

use crate::params::Params;
use crate::Refusal;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use ring::signature::{UnparsedPublicKey, ED25519};

/// How far a Telnyx timestamp may be from the server's clock (seconds), as Telnyx's own
/// libraries allow.
pub const TELNYX_WINDOW_SECS: i64 = 300;

/// The URL as the carrier may have signed it: as requested, without its port, and with the
/// scheme's default port written out (what the carriers' libraries try as well).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Ok(mut parsed) = url::Url::parse(url) {
        let host = parsed.host_str().unwrap_or_default().to_string();
        if parsed.port().is_some() {
            if parsed.set_port(None).is_ok() {
                out.push(parsed.to_string());
            }
        } else if !host.is_empty() {
            // `Url` never writes a scheme's default port; write it out by hand.
            let default = if parsed.scheme() == "https" { 443 } else { 80 };
            out.push(url.replacen(&host, &format!("{host}:{default}"), 1));
        }
    }
    out
}

/// Parameters sorted by name, each name's distinct values sorted, concatenated name then value.
fn sorted_concat(params: &Params) -> String {
    let mut pairs: Vec<(&str, &str)> = params.pairs().collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut s = String::new();
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

fn hmac_matches(algorithm: hmac::Algorithm, secret: &str, data: &str, tag: &[u8]) -> bool {
    let key = hmac::Key::new(algorithm, secret.as_bytes());
    hmac::verify(&key, data.as_bytes(), tag).is_ok()
}

/// Twilio's `X-Twilio-Signature` over `url` (as requested, query included) and `params`.
pub fn twilio(auth_token: &str, url: &str, params: &Params, header: &str) -> Result<(), Refusal> {
    let tag = STANDARD
        .decode(header.trim())
        .map_err(|_| Refusal::BadSignature)?;
    let tail = sorted_concat(params);
    let ok = url_variants(url).iter().any(|u| {
        hmac_matches(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            auth_token,
            &format!("{u}{tail}"),
            &tag,
        )
    });
    ok.then_some(()).ok_or(Refusal::BadSignature)
}

/// SignalWire's `X-SignalWire-Signature`: the Twilio-compatible form over form parameters, or
/// the hex form over the raw body.
pub fn signalwire(
    signing_key: &str,
    url: &str,
    params: &Params,
    body: &[u8],
    header: &str,
) -> Result<(), Refusal> {
    if twilio(signing_key, url, params, header).is_ok() {
        return Ok(());
    }
    let Some(tag) = decode_hex(header.trim()) else {
        return Err(Refusal::BadSignature);
    };
    let body = std::str::from_utf8(body).map_err(|_| Refusal::BadSignature)?;
    let ok = url_variants(url).iter().any(|u| {
        hmac_matches(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            signing_key,
            &format!("{u}{body}"),
            &tag,
        )
    });
    ok.then_some(()).ok_or(Refusal::BadSignature)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The string Plivo's V3 signature covers for a POST to `url` with `params`.
pub fn plivo_base(url: &str, params: &Params, nonce: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let base = base.split('#').next().unwrap_or(base);
    let mut query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    query.sort_unstable();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let has_params = params.pairs().next().is_some();
    let mut s = base.to_string();
    if !query.is_empty() || has_params {
        s.push('?');
        s.push_str(&query);
    }
    if !query.is_empty() && has_params {
        s.push('.');
    }
    let mut pairs: Vec<(&str, &str)> = params.pairs().collect();
    pairs.sort_unstable();
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    s.push('.');
    s.push_str(nonce);
    s
}

/// Plivo's `X-Plivo-Signature-V3` (one or several, comma-separated) with its nonce.
pub fn plivo(
    auth_token: &str,
    url: &str,
    params: &Params,
    nonce: &str,
    header: &str,
) -> Result<(), Refusal> {
    let data = plivo_base(url, params, nonce);
    let ok = header.split(',').any(|one| {
        STANDARD
            .decode(one.trim())
            .is_ok_and(|tag| hmac_matches(hmac::HMAC_SHA256, auth_token, &data, &tag))
    });
    ok.then_some(()).ok_or(Refusal::BadSignature)
}

/// Telnyx's `telnyx-signature-ed25519` over `timestamp|body`, checked with the account's
/// base64 public key; the timestamp (Unix seconds) must be within [`TELNYX_WINDOW_SECS`] of
/// `now_secs`. Returns the timestamp.
pub fn telnyx(
    public_key: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now_secs: i64,
) -> Result<i64, Refusal> {
    let key = STANDARD
        .decode(public_key.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or(Refusal::BadKey)?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refusal::Replayed)?;
    if (now_secs - ts).abs() > TELNYX_WINDOW_SECS {
        return Err(Refusal::Replayed);
    }
    let sig = STANDARD
        .decode(header.trim())
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or(Refusal::BadSignature)?;
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.trim().as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&message, &sig)
        .map_err(|_| Refusal::BadSignature)?;
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn twilio_example() -> Params {
        Params::from_pairs([
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    // Vectors computed with the carriers' own helper libraries (twilio 9.13, plivo 4.63).
    #[test]
    fn twilio_signature_matches_the_helper_library() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let p = twilio_example();
        assert_eq!(
            twilio("12345", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            Ok(())
        );
        // Signed with the default port written out: still accepted.
        assert_eq!(
            twilio("12345", url, &p, "EpDEmp1PyjDYp77YxYU3GILBWzE="),
            Ok(())
        );
        assert_eq!(
            twilio("54321", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            Err(Refusal::BadSignature)
        );
        let mut tampered = twilio_example();
        tampered.push("To", "+18005550000");
        assert_eq!(
            twilio("12345", url, &tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            twilio("12345", url, &p, "not base64!"),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn signalwire_accepts_both_forms() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let p = twilio_example();
        assert_eq!(
            signalwire("12345", url, &p, b"", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            Ok(())
        );
        let body = br#"{"call":{"id":"1"}}"#;
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345");
        let tag = hmac::sign(
            &key,
            format!("{url}{}", std::str::from_utf8(body).unwrap()).as_bytes(),
        );
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            signalwire("12345", url, &Params::default(), body, &hex),
            Ok(())
        );
        assert_eq!(
            signalwire("12345", url, &Params::default(), b"{}", &hex),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn plivo_signature_matches_the_helper_library() {
        let p = Params::from_pairs([
            ("CallUUID", "u-1"),
            ("From", "14155550100"),
            ("To", "14155550123"),
        ]);
        let url = "https://example.com/answer?c=abc.def";
        assert_eq!(
            plivo_base(url, &p, "12345"),
            "https://example.com/answer?c=abc.def.CallUUIDu-1From14155550100To14155550123.12345"
        );
        let sig = "LqPQWJYDtI6maiumuHxF2mg4f9y+CjiKB9ZyCPdFZds=";
        assert_eq!(plivo("token", url, &p, "12345", sig), Ok(()));
        assert_eq!(
            plivo("token", url, &p, "12345", &format!("xx,{sig}")),
            Ok(())
        );
        assert_eq!(
            plivo("token", url, &p, "12346", sig),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            plivo_base("https://example.com/answer", &p, "n"),
            "https://example.com/answer?CallUUIDu-1From14155550100To14155550123.n"
        );
    }

    #[test]
    fn telnyx_checks_key_signature_and_window() {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
        let public = STANDARD.encode(pair.public_key().as_ref());
        let body = b"CallSid=v3%3Aabc&To=%2B14155550123";
        let sign = |ts: &str| STANDARD.encode(pair.sign(&[ts.as_bytes(), b"|", body].concat()));
        let now = 1_800_000_000;
        assert_eq!(
            telnyx(&public, "1800000000", body, &sign("1800000000"), now),
            Ok(now)
        );
        let old = (now - TELNYX_WINDOW_SECS - 1).to_string();
        assert_eq!(
            telnyx(&public, &old, body, &sign(&old), now),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            telnyx(&public, "1800000001", body, &sign("1800000000"), now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            telnyx("c2hvcnQ=", "1800000000", body, &sign("1800000000"), now),
            Err(Refusal::BadKey)
        );
        assert_eq!(
            telnyx(&public, "soon", body, &sign("1800000000"), now),
            Err(Refusal::Replayed)
        );
    }
}
