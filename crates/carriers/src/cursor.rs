//! The failover cursor: where a webhook call stands (which call, which attempt, which target,
//! which targets were tried), carried in the dial action URL so that the web tier keeps no
//! per-call state. It is signed with a server key (HMAC-SHA256, truncated to 128 bits) so a
//! caller of the URL cannot forge or alter it.

use crate::Refusal;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

/// The longest a cursor stays valid (ms): the action request comes when the attempt ends, which
/// for an answered call is after the conversation, so this is a day.
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;

/// Most targets a cursor lists as tried (routing plans allow at most this many attempts).
pub const MAX_TRIED: usize = 32;

/// Where a webhook call stands between two requests of the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The call record's id.
    pub call: i64,
    /// The attempt being dialled (1-based).
    pub seq: u32,
    /// The target being dialled.
    pub target: i64,
    /// Every target attempted so far, this one included.
    pub tried: Vec<i64>,
    /// When the cursor was issued (ms since the epoch).
    pub issued_ms: i64,
}

fn tag(key: &[u8], payload: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes())
}

impl Cursor {
    /// The cursor as URL-safe text (digits, `.`, `-`, `_` and base64url): signed with `key`.
    pub fn encode(&self, key: &[u8]) -> String {
        let tried: Vec<String> = self.tried.iter().map(i64::to_string).collect();
        let payload = format!(
            "{}.{}.{}.{}.{}",
            self.call,
            self.seq,
            self.target,
            tried.join("-"),
            self.issued_ms
        );
        let mac = URL_SAFE_NO_PAD.encode(&tag(key, &payload).as_ref()[..16]);
        format!("{payload}.{mac}")
    }

    /// Reads and checks a cursor: its signature under `key` and its age at `now_ms`.
    pub fn decode(raw: &str, key: &[u8], now_ms: i64) -> Result<Self, Refusal> {
        let (payload, mac) = raw.rsplit_once('.').ok_or(Refusal::BadCursor)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| Refusal::BadCursor)?;
        let full = tag(key, payload);
        if mac.len() != 16 || !constant_eq(&full.as_ref()[..16], &mac) {
            return Err(Refusal::BadCursor);
        }
        let mut parts = payload.split('.');
        let mut next = || parts.next().ok_or(Refusal::BadCursor);
        let num = |s: &str| s.parse::<i64>().map_err(|_| Refusal::BadCursor);
        let call = num(next()?)?;
        let seq = next()?.parse::<u32>().map_err(|_| Refusal::BadCursor)?;
        let target = num(next()?)?;
        let tried_raw = next()?;
        let issued_ms = num(next()?)?;
        let tried = if tried_raw.is_empty() {
            Vec::new()
        } else {
            tried_raw
                .split('-')
                .map(num)
                .collect::<Result<Vec<_>, _>>()?
        };
        if tried.len() > MAX_TRIED || now_ms - issued_ms > MAX_AGE_MS || issued_ms > now_ms + 60_000
        {
            return Err(Refusal::BadCursor);
        }
        Ok(Self {
            call,
            seq,
            target,
            tried,
            issued_ms,
        })
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            call: 1_764_000_000_000_123,
            seq: 2,
            target: 7,
            tried: vec![3, 7],
            issued_ms: 1_764_000_000_000,
        }
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let text = cursor().encode(b"key");
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        assert_eq!(
            Cursor::decode(&text, b"key", 1_764_000_001_000),
            Ok(cursor())
        );
        let none = Cursor {
            tried: vec![],
            ..cursor()
        };
        assert_eq!(
            Cursor::decode(&none.encode(b"key"), b"key", 1_764_000_001_000),
            Ok(none)
        );
    }

    #[test]
    fn refuses_forged_altered_and_old_cursors() {
        let text = cursor().encode(b"key");
        let now = 1_764_000_001_000;
        assert_eq!(
            Cursor::decode(&text, b"other", now),
            Err(Refusal::BadCursor)
        );
        let altered = text.replacen(".7.", ".8.", 1);
        assert_ne!(altered, text);
        assert_eq!(
            Cursor::decode(&altered, b"key", now),
            Err(Refusal::BadCursor)
        );
        assert_eq!(
            Cursor::decode(&text, b"key", 1_764_000_000_000 + MAX_AGE_MS + 1),
            Err(Refusal::BadCursor)
        );
        for junk in [
            "",
            ".",
            "a.b",
            "1.2.3.4.5.",
            "1.2.3..5.AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                Cursor::decode(junk, b"key", now),
                Err(Refusal::BadCursor),
                "{junk}"
            );
        }
    }
}
