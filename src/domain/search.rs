//! Folding text for accent- and case-insensitive search, the same on every
//! database: NFKD, combining marks dropped, lowercase, whitespace collapsed.
//! The folded key is stored beside the client, so the database only compares
//! plain strings (SQLite has no accent-insensitive collation).
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `"  François  TREMBLAY"` → `"francois tremblay"`.
pub fn fold(text: &str) -> String {
    let folded: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    folded
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stored key of a client: its folded names.
pub fn client_key(first_name: Option<&str>, last_name: Option<&str>) -> String {
    fold(&format!(
        "{} {}",
        first_name.unwrap_or_default(),
        last_name.unwrap_or_default()
    ))
}

/// The folded words of a query; every one must occur in the key, in any order.
pub fn words(query: &str) -> Vec<String> {
    fold(query)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(fold("François TREMBLAY"), "francois tremblay");
        assert_eq!(fold("  Hélène\tCôté-Bélanger "), "helene cote-belanger");
        assert_eq!(fold("ﬁne"), "fine");
    }

    #[test]
    fn the_key_holds_both_names() {
        assert_eq!(
            client_key(Some("François"), Some("Tremblay")),
            "francois tremblay"
        );
        assert_eq!(client_key(None, Some("Tremblay")), "tremblay");
    }

    #[test]
    fn query_words_are_folded() {
        assert_eq!(words("Tremblay  François"), vec!["tremblay", "francois"]);
        assert!(words("   ").is_empty());
    }
}
