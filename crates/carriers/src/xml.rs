//! The answers to a carrier's webhook: TwiML (Twilio), cXML (SignalWire, TwiML-compatible),
//! TeXML (Telnyx) and Plivo XML. Each is a `<Response>` with one verb; the documents are small
//! enough that they are written directly, with every attribute and text escaped.

use crate::Carrier;
use std::fmt::Write;

/// Where a dial attempt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialled<'a> {
    /// A phone number in E.164.
    Number(&'a str),
    /// A SIP URI.
    Sip(&'a str),
}

/// What the carrier is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Dial a target; the carrier requests `action_url` when the attempt ends.
    Dial {
        /// The target's destination.
        to: Dialled<'a>,
        /// Seconds to ring.
        timeout_secs: u32,
        /// The caller id shown to the target (the caller's number), if one.
        caller_id: Option<&'a str>,
        /// Where the carrier reports the attempt's end.
        action_url: &'a str,
    },
    /// Refuse the call before it is answered (the first answer only).
    Reject {
        /// Busy tone rather than a plain rejection.
        busy: bool,
    },
    /// End the call.
    Hangup,
}

/// XML-escapes `s` for text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The answer as the carrier's XML document.
pub fn render(carrier: Carrier, answer: &Answer<'_>) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    match answer {
        Answer::Dial {
            to,
            timeout_secs,
            caller_id,
            action_url,
        } => dial(&mut x, carrier, *to, *timeout_secs, *caller_id, action_url),
        Answer::Reject { busy } => {
            let reason = if *busy { "busy" } else { "rejected" };
            // Plivo has no <Reject>; its <Hangup> takes the same reasons.
            let verb = if carrier == Carrier::Plivo {
                "Hangup"
            } else {
                "Reject"
            };
            let _ = write!(x, "<{verb} reason=\"{reason}\"/>");
        }
        Answer::Hangup => x.push_str("<Hangup/>"),
    }
    x.push_str("</Response>");
    x
}

fn dial(
    x: &mut String,
    carrier: Carrier,
    to: Dialled<'_>,
    timeout: u32,
    caller_id: Option<&str>,
    action: &str,
) {
    let _ = write!(
        x,
        "<Dial action=\"{}\" method=\"POST\" timeout=\"{timeout}\"",
        escape(action)
    );
    if let Some(id) = caller_id.filter(|id| id.starts_with('+')) {
        // Plivo writes numbers without the plus.
        let id = if carrier == Carrier::Plivo {
            &id[1..]
        } else {
            id
        };
        let _ = write!(x, " callerId=\"{}\"", escape(id));
    }
    match carrier {
        // Keep the caller ringing until the target answers, so an unanswered attempt costs the
        // caller nothing and the next one can still be tried.
        Carrier::Twilio | Carrier::SignalWire => x.push_str(" answerOnBridge=\"true\""),
        // Plivo: go on with the action URL's answer after the dial (its default, said plainly).
        Carrier::Plivo => x.push_str(" redirect=\"true\""),
        Carrier::Telnyx => {}
    }
    x.push('>');
    match (carrier, to) {
        (Carrier::Plivo, Dialled::Number(n)) => {
            let _ = write!(x, "<Number>{}</Number>", escape(n.trim_start_matches('+')));
        }
        (Carrier::Plivo, Dialled::Sip(uri)) => {
            let _ = write!(x, "<User>{}</User>", escape(uri));
        }
        (_, Dialled::Number(n)) => {
            let _ = write!(x, "<Number>{}</Number>", escape(n));
        }
        (_, Dialled::Sip(uri)) => {
            let _ = write!(x, "<Sip>{}</Sip>", escape(uri));
        }
    }
    x.push_str("</Dial>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_dials_a_number_with_the_action_escaped() {
        let a = Answer::Dial {
            to: Dialled::Number("+14155550111"),
            timeout_secs: 20,
            caller_id: Some("+14155550100"),
            action_url: "http://127.0.0.1:1/carriers/k/dial?c=1.2&x=<y>",
        };
        assert_eq!(
            render(Carrier::Twilio, &a),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial \
             action=\"http://127.0.0.1:1/carriers/k/dial?c=1.2&amp;x=&lt;y&gt;\" method=\"POST\" \
             timeout=\"20\" callerId=\"+14155550100\" answerOnBridge=\"true\">\
             <Number>+14155550111</Number></Dial></Response>"
        );
    }

    #[test]
    fn plivo_uses_its_own_nouns_and_numbers() {
        let a = Answer::Dial {
            to: Dialled::Sip("sip:agent@10.0.0.1"),
            timeout_secs: 15,
            caller_id: Some("+14155550100"),
            action_url: "http://h/a",
        };
        let x = render(Carrier::Plivo, &a);
        assert!(x.contains("<User>sip:agent@10.0.0.1</User>"), "{x}");
        assert!(x.contains("callerId=\"14155550100\""), "{x}");
        assert_eq!(
            render(Carrier::Plivo, &Answer::Reject { busy: true }),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup reason=\"busy\"/></Response>"
        );
        assert!(render(Carrier::Telnyx, &Answer::Reject { busy: false })
            .contains("<Reject reason=\"rejected\"/>"));
        let sip = Answer::Dial {
            to: Dialled::Sip("sip:a@b"),
            timeout_secs: 5,
            caller_id: Some("anonymous"),
            action_url: "u",
        };
        let x = render(Carrier::SignalWire, &sip);
        assert!(
            x.contains("<Sip>sip:a@b</Sip>") && !x.contains("callerId"),
            "{x}"
        );
    }
}
