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
            if !trimmed.is_empty() && (counted < words || number_like(trimmed)) {
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

/// The byte offset where the values `text` may still be writing begin: the last word if it is not
/// finished (it may grow into an email, a key or a number), then every word before it that can be
/// part of a value of several words (number groups, a date's month and day, an IBAN's groups),
/// and an unterminated PEM block. Words that only give context ("born on", "password:") are not
/// held: the guard reads them back from what was sent.
pub fn hold_values(text: &str) -> usize {
    let mut start = text.len();
    let mut rest = text;
    if !text.ends_with(char::is_whitespace) {
        match text.rfind(char::is_whitespace) {
            Some(space) => {
                start = space + text[space..].chars().next().map_or(1, char::len_utf8);
                rest = &text[..space];
            }
            None => return 0,
        }
    }
    loop {
        let trimmed = rest.trim_end();
        let word_start = trimmed.rfind(char::is_whitespace).map_or(0, |space| {
            space + trimmed[space..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &trimmed[word_start..];
        if word.is_empty() || !(number_like(word) || date_word(word)) {
            break;
        }
        start = word_start;
        if word_start == 0 {
            break;
        }
        rest = &trimmed[..word_start];
    }
    match text.rfind("-----BEGIN ") {
        Some(begin) if !text[begin..].contains("-----END ") => start.min(begin),
        _ => start,
    }
}

/// A word of a written date: a month's name, an ordinal day, `of`.
fn date_word(word: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let word = word.trim_end_matches([',', '.']).to_ascii_lowercase();
    word == "of"
        || (word.len() >= 3 && MONTHS.iter().any(|m| word.starts_with(m)))
        || (word.len() > 2
            && word[..word.len() - 2].chars().all(|c| c.is_ascii_digit())
            && ["st", "nd", "rd", "th"].contains(&&word[word.len() - 2..]))
}

/// A word that may continue a number written in groups: digits, capitals and separators only.
fn number_like(word: &str) -> bool {
    !word.is_empty()
        && word.chars().any(|c| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || "+()-./:,".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_that_can_still_be_part_of_a_value_are_held() {
        let held = |text: &'static str| &text[hold_values(text)..];
        assert_eq!(held("Write to jane.do"), "jane.do");
        assert_eq!(held("Write to her. "), "");
        assert_eq!(held("pay with card 4111 1111 "), "4111 1111 ");
        assert_eq!(held("she was born on March 3, "), "March 3, ");
        assert_eq!(held("born on the 3rd of Ma"), "3rd of Ma");
        assert_eq!(held("call +1 (202) 555"), "+1 (202) 555");
        assert_eq!(held("IBAN DE89 3704 "), "DE89 3704 ");
        assert_eq!(held("word"), "word");
        assert_eq!(
            held("key: -----BEGIN RSA PRIVATE KEY----- MIIE abc "),
            "-----BEGIN RSA PRIVATE KEY----- MIIE abc "
        );
    }

    #[test]
    fn the_last_words_and_number_groups_are_held() {
        let text = "pay with card 4111 1111 1111";
        assert_eq!(&text[hold_words(text, 2)..], "4111 1111 1111");
        let text = "one two three four";
        assert_eq!(&text[hold_words(text, 2)..], "three four");
        let text = "one two";
        assert_eq!(&text[hold_words(text, 1)..], "two");
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
