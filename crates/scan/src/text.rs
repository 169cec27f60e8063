//! What a page's visible text says: phone numbers, claims that the visitor's device is infected
//! or blocked (in English, Spanish, French, German, Portuguese, Italian, Japanese, Chinese and
//! Korean), impersonated
//! brands, fake error codes, "do not close or restart", calls to phone support.
//!
//! This is prose, not code: plain word lists over lower-cased text.

/// What the text says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TextReport {
    /// Distinct phone numbers (digits only) and how often each appears.
    pub phones: Vec<(String, usize)>,
    /// A claim about the visitor's own device (infected, blocked, …): the phrase.
    pub victim_claim: Option<String>,
    /// An impersonated brand named alongside such a claim.
    pub brand: Option<String>,
    /// "Do not close / restart / shut down": the phrase.
    pub do_not_close: Option<String>,
    /// A fake error code: the text.
    pub error_code: Option<String>,
    /// "Call support" wording: the phrase.
    pub call_support: Option<String>,
}

const BRANDS: &[&str] = &[
    "microsoft",
    "windows",
    "apple",
    "macos",
    "mac os",
    "icloud",
    "google",
    "chrome",
    "norton",
    "mcafee",
    "avast",
    "defender",
    "amazon",
    "paypal",
    "facebook",
    "firefox",
    "iphone",
    "safari",
    "netflix",
    "geek squad",
];

/// Subjects that make a claim about the visitor's own device or data.
const SUBJECTS: &[&str] = &[
    "your computer",
    "your pc",
    "your device",
    "your system",
    "your mac",
    "your iphone",
    "your browser",
    "your windows",
    "your files",
    "your personal",
    "your data",
    "this computer",
    "this pc",
    "this device",
    "this windows",
    "su computadora",
    "su ordenador",
    "su equipo",
    "su pc",
    "su dispositivo",
    "tu ordenador",
    "tu equipo",
    "tu computadora",
    "tu dispositivo",
    "este equipo",
    "este ordenador",
    "sus datos",
    "votre ordinateur",
    "votre pc",
    "votre appareil",
    "votre système",
    "votre mac",
    "cet ordinateur",
    "vos données",
    "vos fichiers",
    "ihr computer",
    "ihr pc",
    "ihr gerät",
    "ihr system",
    "ihr mac",
    "dieser computer",
    "ihre daten",
    "ihre dateien",
    "seu computador",
    "o seu computador",
    "seu dispositivo",
    "il tuo computer",
    "il tuo pc",
    "il tuo dispositivo",
    "questo computer",
    "お使いのコンピューター",
    "お使いのコンピュータ",
    "お使いのpc",
    "あなたのコンピューター",
    "このコンピューター",
    "このpc",
    "您的电脑",
    "您的计算机",
    "你的电脑",
    "귀하의 컴퓨터",
    "당신의 컴퓨터",
    "이 컴퓨터",
];

/// Alarm words that, after a subject, make the claim.
const ALARMS: &[&str] = &[
    "infected",
    "blocked",
    "locked",
    "hacked",
    "compromised",
    "at risk",
    "disabled",
    "suspended",
    "stolen",
    "damaged",
    "corrupted",
    "virus",
    "spyware",
    "malware",
    "trojan",
    "infectado",
    "infectada",
    "bloqueado",
    "bloqueada",
    "hackeado",
    "pirateado",
    "comprometido",
    "en riesgo",
    "suspendido",
    "robado",
    "infecté",
    "infectée",
    "bloqué",
    "bloquée",
    "piraté",
    "compromis",
    "en danger",
    "suspendu",
    "volé",
    "infiziert",
    "gesperrt",
    "blockiert",
    "gehackt",
    "kompromittiert",
    "gefährdet",
    "gestohlen",
    "infetto",
    "bloccato",
    "violato",
    "em risco",
    "感染",
    "ブロック",
    "ロックされ",
    "ハッキング",
    "被锁定",
    "已被锁",
    "病毒",
    "감염",
    "차단",
    "해킹",
];

/// Claims that need no subject.
const CLAIMS: &[&str] = &[
    "virus detected",
    "threat detected",
    "viruses detected",
    "security alert",
    "security warning",
    "access to this computer has been",
    "has been blocked",
    "has been locked",
    "pornographic spyware",
    "identity theft",
    "virus detectado",
    "alerta de seguridad",
    "amenaza detectada",
    "ha sido bloqueado",
    "virus détecté",
    "alerte de sécurité",
    "menace détectée",
    "a été bloqué",
    "virus erkannt",
    "sicherheitswarnung",
    "bedrohung erkannt",
    "wurde gesperrt",
    "wurde blockiert",
    "vírus detectado",
    "alerta de segurança",
    "avviso di sicurezza",
    "è stato bloccato",
    "ウイルスが検出",
    "ウイルスを検出",
    "ウイルスに感染しています",
    "アクセスはブロック",
    "アクセスがブロック",
    "セキュリティ警告",
    "检测到病毒",
    "安全警报",
    "已被锁定",
    "바이러스가 감지",
    "바이러스에 감염되었습니다",
    "보안 경고",
    "차단되었습니다",
];

const DO_NOT_CLOSE: &[&str] = &[
    "do not close",
    "don't close",
    "do not restart",
    "don't restart",
    "do not shut down",
    "do not turn off",
    "do not ignore",
    "no cierre",
    "no reinicie",
    "no apague",
    "no cierres",
    "no reinicies",
    "ne fermez pas",
    "ne redémarrez pas",
    "n'éteignez pas",
    "ne pas fermer",
    "nicht schließen",
    "nicht neu starten",
    "nicht ausschalten",
    "schließen sie diese seite nicht",
    "starten sie ihren computer nicht",
    "não feche",
    "não reinicie",
    "non chiudere",
    "non riavviare",
    "non spegnere",
    "閉じないでください",
    "閉じないで下さい",
    "再起動しないでください",
    "電源を切らないで",
    "请勿关闭",
    "不要关闭",
    "请勿重启",
    "不要重启",
    "닫지 마십시오",
    "닫지 마세요",
    "재부팅하지 마",
    "끄지 마십시오",
];

const CALL_SUPPORT: &[&str] = &[
    "call support",
    "call microsoft",
    "call apple",
    "call windows",
    "call the toll",
    "call technical",
    "call tech",
    "contact support",
    "toll free",
    "toll-free",
    "helpline",
    "llame al",
    "llame a",
    "llame ahora",
    "soporte técnico",
    "appelez",
    "assistance technique",
    "support technique",
    "rufen sie",
    "technischen support",
    "kundendienst",
    "ligue para",
    "suporte técnico",
    "chiama",
    "assistenza tecnica",
    "call now",
    "call immediately",
    "フリーダイヤル",
    "通話無料",
    "無料通話",
    "免费热线",
    "免费电话",
    "무료 전화",
    "수신자 부담",
    "サポートに電話",
    "サポート窓口に電話",
    "今すぐ電話",
    "至急お電話",
    "技术支持电话",
    "立即拨打",
    "请立即致电",
    "지원센터에 전화",
    "지금 전화",
    "즉시 전화",
];

const ERROR_WORDS: &[&str] = &[
    "error", "code", "erreur", "fehler", "código", "codice", "errore", "erro",
];

/// Reads the text.
pub fn read(text: &str) -> TextReport {
    let lower = text.to_lowercase();
    let mut r = TextReport {
        phones: phones(text),
        ..TextReport::default()
    };
    r.victim_claim = victim_claim(&lower);
    if r.victim_claim.is_some() {
        r.brand = BRANDS
            .iter()
            .find(|b| contains_word(&lower, b))
            .map(|b| b.to_string());
    }
    r.do_not_close = DO_NOT_CLOSE
        .iter()
        .find(|p| lower.contains(*p))
        .map(|p| p.to_string());
    r.call_support = CALL_SUPPORT
        .iter()
        .find(|p| lower.contains(*p))
        .map(|p| p.to_string());
    r.error_code = error_code(text);
    r
}

fn victim_claim(lower: &str) -> Option<String> {
    if let Some(c) = CLAIMS.iter().find(|c| lower.contains(*c)) {
        return Some(c.to_string());
    }
    for s in SUBJECTS {
        let mut from = 0;
        for _ in 0..1_000 {
            let Some(i) = lower[from..].find(s) else {
                break;
            };
            let start = from + i + s.len();
            let window = crate::js::truncate(&lower[start..], 80);
            if let Some(a) = ALARMS.iter().find(|a| window.contains(*a)) {
                return Some(format!("{s} … {a}"));
            }
            from = start;
        }
    }
    None
}

/// Whether `word` is in `text` with no letter on either side.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Phone numbers: runs of digits and separators holding 9 to 15 digits.
fn phones(text: &str) -> Vec<(String, usize)> {
    let mut found: Vec<(String, usize)> = Vec::new();
    let mut digits = String::new();
    let mut run_len = 0usize;
    let flush = |digits: &mut String, found: &mut Vec<(String, usize)>| {
        if (9..=15).contains(&digits.len()) && found.len() < 100 {
            let key = digits.trim_start_matches('1').to_string();
            let key = if key.len() >= 9 { key } else { digits.clone() };
            match found.iter_mut().find(|(d, _)| *d == key) {
                Some((_, n)) => *n += 1,
                None => found.push((key, 1)),
            }
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            run_len += 1;
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | '\u{a0}') && run_len > 0 {
            if matches!(c, ' ' | '\u{a0}') && digits.len() >= 10 {
                // a whole number followed by a space: the next digits are another number
                flush(&mut digits, &mut found);
                run_len = 0;
                continue;
            }
            run_len += 1;
            if run_len > 30 {
                flush(&mut digits, &mut found);
                run_len = 0;
            }
            continue;
        } else {
            flush(&mut digits, &mut found);
            run_len = 0;
            if c == '+' {
                run_len = 1;
            }
        }
        if digits.len() > 15 {
            digits.clear();
            run_len = 0;
        }
    }
    flush(&mut digits, &mut found);
    found
}

/// A fake error code: `0x` and six or more hex digits, or a token of 5 to 16 capital letters
/// and digits (both, dashes allowed) shortly after an error word.
fn error_code(text: &str) -> Option<String> {
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ':') {
        let w = word.trim_matches(|c: char| !c.is_alphanumeric());
        if let Some(hex) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
            if hex.len() >= 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Some(w.to_string());
            }
        }
    }
    let lower = text.to_lowercase();
    for e in ERROR_WORDS {
        for (i, _) in lower.match_indices(e).take(200) {
            let after = crate::js::truncate(&text[(i + e.len()).min(text.len())..], 24);
            for token in after.split(|c: char| !c.is_alphanumeric() && c != '-') {
                let t = token.trim_matches('-');
                let letters = t.chars().filter(|c| c.is_ascii_uppercase()).count();
                let digits = t.chars().filter(|c| c.is_ascii_digit()).count();
                if (5..=16).contains(&t.len())
                    && letters >= 1
                    && digits >= 1
                    && letters + digits + t.matches('-').count() == t.len()
                {
                    return Some(t.to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scare_wording_in_several_languages() {
        let r = read("Windows Defender: your computer is infected. Do not close this window. Error # DW6VB36. Call support +1 (888) 555-0142 now, 1-888-555-0142.");
        assert_eq!(r.brand.as_deref(), Some("windows"));
        assert!(r.victim_claim.is_some());
        assert_eq!(r.do_not_close.as_deref(), Some("do not close"));
        assert_eq!(r.error_code.as_deref(), Some("DW6VB36"));
        assert_eq!(r.phones, [("8885550142".to_string(), 2)]);
        let fr = read("Alerte de sécurité Microsoft : votre ordinateur a été bloqué. Ne fermez pas cette page. Code d'erreur : 0x80070424");
        assert!(fr.victim_claim.is_some() && fr.brand.is_some() && fr.do_not_close.is_some());
        assert_eq!(fr.error_code.as_deref(), Some("0x80070424"));
        let de = read("Ihr Computer wurde gesperrt. Bitte nicht neu starten.");
        assert!(de.victim_claim.is_some() && de.do_not_close.is_some());
        let plain = read("We fix leaking pipes. Call 020 7946 0958 today. Order 12345.");
        assert!(plain.victim_claim.is_none() && plain.error_code.is_none());
        assert_eq!(plain.phones.len(), 1);
    }
}
