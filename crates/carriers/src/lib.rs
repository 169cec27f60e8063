//! Carrier dialects for calls that arrive as webhooks instead of SIP: a programmable-voice
//! carrier POSTs each incoming call to Callopt and dials whatever the answer says.
//!
//! # Layout
//! - [`signature`]: verifying that a request comes from the carrier (HMAC-SHA1 for Twilio and
//!   SignalWire, HMAC-SHA256 with a nonce for Plivo, Ed25519 with a timestamp for Telnyx).
//! - [`cursor`]: the failover cursor carried in the dial action URL, signed so it cannot be forged.
//! - [`params`]: a webhook's parameters, and the events they mean in each dialect.
//! - [`xml`]: the answers (TwiML, TeXML, cXML, Plivo XML).
//!
//! Nothing here does I/O; the HTTP handlers in `callopt-http` put the pieces together with the
//! switchboard.

pub mod cursor;
pub mod params;
pub mod signature;
pub mod xml;

pub use cursor::Cursor;
pub use params::{CallEnded, DialEnded, DialStatus, Incoming, Params};
pub use xml::{Answer, Dialled};

/// A programmable-voice carrier whose webhooks Callopt answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// Twilio: TwiML, `X-Twilio-Signature`.
    Twilio,
    /// Telnyx: TeXML, `telnyx-signature-ed25519` and `telnyx-timestamp`.
    Telnyx,
    /// SignalWire: cXML (TwiML-compatible), `X-SignalWire-Signature`.
    SignalWire,
    /// Plivo: Plivo XML, `X-Plivo-Signature-V3` and its nonce.
    Plivo,
}

impl Carrier {
    /// Every carrier, in the order the API documents them.
    pub const ALL: [Carrier; 4] = [
        Carrier::Twilio,
        Carrier::Telnyx,
        Carrier::SignalWire,
        Carrier::Plivo,
    ];

    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Telnyx => "telnyx",
            Self::SignalWire => "signalwire",
            Self::Plivo => "plivo",
        }
    }

    /// The carrier named `raw` (`twilio`, `telnyx`, `signalwire`, `plivo`).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

impl std::fmt::Display for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature header is missing.
    #[error("the request carries no {0} header")]
    MissingSignature(&'static str),
    /// The signature does not match the request.
    #[error("the request signature does not match")]
    BadSignature,
    /// Telnyx: the timestamp is outside the replay window, or was seen already.
    #[error("the request timestamp is outside the replay window or was used before")]
    Replayed,
    /// The connection's credentials cannot verify anything (a malformed public key).
    #[error("the connection's verification key is not usable")]
    BadKey,
    /// The failover cursor in the action URL is missing, malformed, forged or too old.
    #[error("the failover cursor is missing, forged or expired")]
    BadCursor,
}
