//! Logging: `RUST_LOG` filters; lines on stderr as text (colours only on a
//! terminal) or as JSON objects (`CRM_LOG_FORMAT=json`).
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// `text` with email addresses and phone numbers masked, for log lines that
/// carry foreign text (database error messages quote the offending values).
pub fn mask_personal(text: &str) -> String {
    mask_phones(&mask_emails(text))
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn mask_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let (before, after) = rest.split_at(at);
        let local_start = before
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_email_char(c))
            .last()
            .map_or(before.len(), |(i, _)| i);
        let domain_len = after[1..]
            .char_indices()
            .take_while(|&(_, c)| is_email_char(c))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        out.push_str(&before[..local_start]);
        if local_start < before.len() && domain_len > 0 {
            out.push_str("<email>");
        } else {
            out.push_str(&before[local_start..]);
            out.push('@');
            out.push_str(&after[1..1 + domain_len]);
        }
        rest = &after[1 + domain_len..];
    }
    out.push_str(rest);
    out
}

fn mask_phones(text: &str) -> String {
    let is_phone_char = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].is_ascii_digit() || chars[i] == '+' || chars[i] == '(') {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && is_phone_char(chars[end]) {
            end += 1;
        }
        // The run ends at its last digit.
        while end > i && !chars[end - 1].is_ascii_digit() {
            end -= 1;
        }
        if end == i {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run: String = chars[i..end].iter().collect();
        let digits = run.chars().filter(char::is_ascii_digit).count();
        let glued = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let before = i.checked_sub(1).and_then(|j| chars.get(j));
        if digits >= 7 && !glued(before) && !glued(chars.get(end)) {
            out.push_str("<phone>");
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_personal;

    #[test]
    fn emails_and_phones_are_masked_in_log_text() {
        assert_eq!(
            mask_personal(
                "duplicate key (kind, value)=(email, ann.o+x@example.com) already exists"
            ),
            "duplicate key (kind, value)=(email, <email>) already exists"
        );
        assert_eq!(
            mask_personal("value (phone, +15145550123) and (514) 555-0123 here"),
            "value (phone, <phone>) and <phone> here"
        );
    }

    #[test]
    fn ids_dates_and_small_numbers_are_left_alone() {
        let text = "opportunity 01a21ff8-6770-7691-90e9-7017bd1a016a at 2026-11-28T02:31:25Z: 3 rows, user@ host";
        assert_eq!(mask_personal(text), text);
    }
}
