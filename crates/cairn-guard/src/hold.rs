//! How much of a streamed answer's unsent tail a word-based check must hold back: a value it acts
//! on is at most a few words long, so everything before the last few words is settled.

/// The byte offset where the last `words` whitespace-separated words of `text` begin, extended
/// back over number-like words (the digit groups of a card, a phone number or an IBAN) and over an
/// unterminated PEM block.
pub fn hold_words(text: &str, words: usize) -> usize {
    let mut start = text.len();
    let mut counted = 0;
    let mut rest = text;
    loop {
        let trimmed = rest.trim_end();
        let Some(space) = trimmed.rfind(char::is_whitespace) else {
            if !trimmed.is_empty() {
                start = 0;
            }
            break;
        };
        let word_start = space + trimmed[space..].chars().next().map_or(1, char::len_utf8);
        let word = &trimmed[word_start..];
        if counted >= words && !number_like(word) {
            break;
        }
        start = word_start;
        counted += 1;
        rest = &trimmed[..space];
    }
    match text.rfind("-----BEGIN ") {
        Some(begin) if !text[begin..].contains("-----END ") => start.min(begin),
        _ => start,
    }
}

/// A word that may continue a number written in groups: digits, capitals and separators only.
fn number_like(word: &str) -> bool {
    !word.is_empty()
        && word.chars().any(|c| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || "+()-./:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_words_and_number_groups_are_held() {
        let text = "pay with card 4111 1111 1111";
        assert_eq!(&text[hold_words(text, 2)..], "4111 1111 1111");
        let text = "one two three four";
        assert_eq!(&text[hold_words(text, 2)..], "three four");
        assert_eq!(hold_words("short", 3), 0);
        let text = "see below -----BEGIN RSA PRIVATE KEY----- MIIE abc def ghi";
        assert_eq!(
            &text[hold_words(text, 1)..],
            "-----BEGIN RSA PRIVATE KEY----- MIIE abc def ghi"
        );
        let text = "done. ";
        assert_eq!(&text[hold_words(text, 1)..], "done. ");
    }
}
