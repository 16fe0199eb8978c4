//! The check digits that tell a real identifier from a number of the right shape.

/// The digits of `text`, ignoring separators; `None` if anything else is in it.
pub fn digits(text: &str) -> Option<Vec<u32>> {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .map(|c| c.to_digit(10))
        .collect()
}

/// Payment cards: a length the card network's prefix allows, passing the Luhn check.
pub fn luhn(digits: &[u32]) -> bool {
    if !card_length_fits(digits) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether the number's length is one its network (by the leading digits) issues.
fn card_length_fits(digits: &[u32]) -> bool {
    let prefix = |n: usize| digits.iter().take(n).fold(0, |acc, d| acc * 10 + d);
    let len = digits.len();
    match (prefix(1), prefix(2), prefix(4)) {
        (4, _, _) => matches!(len, 13 | 16 | 19),
        (_, 34 | 37, _) => len == 15,
        (_, _, 2131 | 1800) => len == 15,
        (_, 51..=55, _) | (_, _, 2221..=2720) => len == 16,
        (_, 36 | 38 | 39 | 30, _) => (14..=19).contains(&len),
        (_, 35 | 62 | 65 | 64, _) | (_, _, 6011) => (16..=19).contains(&len),
        // Maestro.
        (_, 50 | 56..=58 | 67, _) | (_, _, 6304 | 6390 | 604) => (12..=19).contains(&len),
        _ => false,
    }
}

/// IBAN (ISO 13616): country code, two check digits, up to 30 characters; valid when the
/// rearranged number is 1 modulo 97.
pub fn iban(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    if iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        let width = if value < 10 { 10 } else { 100 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

/// The length of an IBAN of `country`, from the SWIFT IBAN registry; `None` for a country without
/// IBANs.
fn iban_length(country: &str) -> Option<usize> {
    const LENGTHS: [(&str, usize); 89] = [
        ("AD", 24),
        ("AE", 23),
        ("AL", 28),
        ("AT", 20),
        ("AZ", 28),
        ("BA", 20),
        ("BE", 16),
        ("BG", 22),
        ("BH", 22),
        ("BI", 27),
        ("BR", 29),
        ("BY", 28),
        ("CH", 21),
        ("CR", 22),
        ("CY", 28),
        ("CZ", 24),
        ("DE", 22),
        ("DJ", 27),
        ("DK", 18),
        ("DO", 28),
        ("EE", 20),
        ("EG", 29),
        ("ES", 24),
        ("FI", 18),
        ("FK", 18),
        ("FO", 18),
        ("FR", 27),
        ("GB", 22),
        ("GE", 22),
        ("GI", 23),
        ("GL", 18),
        ("GR", 27),
        ("GT", 28),
        ("HN", 28),
        ("HR", 21),
        ("HU", 28),
        ("IE", 22),
        ("IL", 23),
        ("IQ", 23),
        ("IS", 26),
        ("IT", 27),
        ("JO", 30),
        ("KW", 30),
        ("KZ", 20),
        ("LB", 28),
        ("LC", 32),
        ("LI", 21),
        ("LT", 20),
        ("LU", 20),
        ("LV", 21),
        ("LY", 25),
        ("MC", 27),
        ("MD", 24),
        ("ME", 22),
        ("MK", 19),
        ("MN", 20),
        ("MR", 27),
        ("MT", 31),
        ("MU", 30),
        ("NI", 28),
        ("NL", 18),
        ("NO", 15),
        ("OM", 23),
        ("PK", 24),
        ("PL", 28),
        ("PS", 29),
        ("PT", 25),
        ("QA", 29),
        ("RO", 24),
        ("RS", 22),
        ("RU", 33),
        ("SA", 24),
        ("SC", 31),
        ("SD", 18),
        ("SE", 24),
        ("SI", 19),
        ("SK", 24),
        ("SM", 27),
        ("SO", 23),
        ("ST", 25),
        ("SV", 28),
        ("TL", 23),
        ("TN", 24),
        ("TR", 26),
        ("UA", 29),
        ("VA", 22),
        ("VG", 24),
        ("XK", 20),
        ("YE", 30),
    ];
    LENGTHS
        .iter()
        .find(|(code, _)| *code == country)
        .map(|(_, length)| *length)
}

/// US Social Security numbers: no area 000, 666 or 900–999, no group 00, no serial 0000.
pub fn us_ssn(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(area), Ok(group), Ok(serial)) = (
        area.parse::<u32>(),
        group.parse::<u32>(),
        serial.parse::<u32>(),
    ) else {
        return false;
    };
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Spanish DNI (8 digits and a letter) and NIE (X, Y or Z, 7 digits and a letter): the letter is
/// the number modulo 23 in a fixed table.
pub fn es_dni(text: &str) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let compact: String = text.chars().filter(|c| *c != '-').collect();
    let Some(letter) = compact.chars().last() else {
        return false;
    };
    let number = &compact[..compact.len() - 1];
    let number = match number.chars().next() {
        Some('X') => format!("0{}", &number[1..]),
        Some('Y') => format!("1{}", &number[1..]),
        Some('Z') => format!("2{}", &number[1..]),
        _ => number.to_owned(),
    };
    match number.parse::<u64>() {
        Ok(n) if number.len() == 8 => LETTERS[(n % 23) as usize] as char == letter,
        _ => false,
    }
}

/// French social security number (NIR): 13 digits and a two-digit key, 97 minus the number
/// modulo 97 (Corsican departments 2A and 2B count as 19 and 18).
pub fn fr_nir(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() != 15 {
        return false;
    }
    let (body, key) = compact.split_at(13);
    let body = body.replace("2A", "19").replace("2B", "18");
    match (body.parse::<u64>(), key.parse::<u64>()) {
        (Ok(n), Ok(key)) => body.len() == 13 && 97 - n % 97 == key,
        _ => false,
    }
}

/// Dutch citizen service number (BSN): nine digits passing the "11-proof", the weighted sum
/// 9·d1 + 8·d2 + … + 2·d8 − d9 divisible by 11.
pub fn nl_bsn(digits: &[u32]) -> bool {
    if digits.len() != 9 || digits.iter().all(|&d| d == 0) {
        return false;
    }
    let sum: i64 = digits[..8]
        .iter()
        .zip((2..=9).rev())
        .map(|(&d, w)| i64::from(d) * w)
        .sum::<i64>()
        - i64::from(digits[8]);
    sum % 11 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_pass_luhn_and_typos_do_not() {
        assert!(luhn(&digits("4111 1111 1111 1111").expect("digits")));
        assert!(luhn(&digits("5500-0000-0000-0004").expect("digits")));
        assert!(luhn(&digits("378282246310005").expect("digits")));
        assert!(!luhn(&digits("4111 1111 1111 1112").expect("digits")));
        assert!(!luhn(&digits("1234").expect("digits")));
    }

    #[test]
    fn ibans_pass_mod_97() {
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("NL91ABNA0417164300"));
        assert!(!iban("DE89 3704 0044 0532 0130 01"));
        assert!(!iban("DE89"));
        // Mod 97 alone passes one string in 97; the country's length rules this one out.
        assert!(!iban("DE89 3704 0044 0532 0130 00 IBAN DE89 3704"));
    }

    #[test]
    fn national_identifiers_check_their_digits() {
        assert!(us_ssn("123", "45", "6789"));
        assert!(!us_ssn("666", "45", "6789"));
        assert!(!us_ssn("912", "45", "6789"));
        assert!(!us_ssn("123", "00", "6789"));
        assert!(es_dni("12345678Z"));
        assert!(es_dni("X1234567L"));
        assert!(!es_dni("12345678A"));
        assert!(fr_nir("2 84 12 76 451 089 93"));
        assert!(!fr_nir("2 84 12 76 451 089 94"));
        assert!(nl_bsn(&digits("111222333").expect("digits")));
        assert!(nl_bsn(&digits("123456782").expect("digits")));
        assert!(!nl_bsn(&digits("123456789").expect("digits")));
    }
}
