//! Personal data and secrets in text: where each value is, and of which kind.
//!
//! Each kind is a pattern that finds candidates and a check that confirms them: card numbers pass
//! Luhn, IBANs pass mod 97, national identifiers pass their check digits, phone numbers are parsed
//! and validated by `phonenumber` (Google's libphonenumber metadata), IP addresses by the standard
//! library. Values that need context (a date of birth, a Dutch BSN) are found only next to the words
//! that make them one.

mod checksums;
mod secrets;

use std::net::Ipv6Addr;
use std::ops::Range;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A kind of personal data or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Email,
    Phone,
    PaymentCard,
    Iban,
    IpAddress,
    UsSsn,
    EsDni,
    FrNir,
    NlBsn,
    DateOfBirth,
    Secret,
}

impl Entity {
    pub const ALL: [Entity; 11] = [
        Entity::Email,
        Entity::Phone,
        Entity::PaymentCard,
        Entity::Iban,
        Entity::IpAddress,
        Entity::UsSsn,
        Entity::EsDni,
        Entity::FrNir,
        Entity::NlBsn,
        Entity::DateOfBirth,
        Entity::Secret,
    ];

    /// The name findings and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::PaymentCard => "payment_card",
            Entity::Iban => "iban",
            Entity::IpAddress => "ip_address",
            Entity::UsSsn => "us_ssn",
            Entity::EsDni => "es_dni",
            Entity::FrNir => "fr_nir",
            Entity::NlBsn => "nl_bsn",
            Entity::DateOfBirth => "date_of_birth",
            Entity::Secret => "secret",
        }
    }

    /// The word in its placeholders: `<EMAIL_1>`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::PaymentCard => "CARD",
            Entity::Iban => "IBAN",
            Entity::IpAddress => "IP",
            Entity::UsSsn => "SSN",
            Entity::EsDni => "DNI",
            Entity::FrNir => "NIR",
            Entity::NlBsn => "BSN",
            Entity::DateOfBirth => "DOB",
            Entity::Secret => "SECRET",
        }
    }

    /// When two findings overlap, the more specific one wins.
    fn priority(self) -> u8 {
        match self {
            Entity::Secret => 0,
            Entity::Email => 1,
            Entity::Iban => 2,
            Entity::PaymentCard => 3,
            Entity::FrNir => 4,
            Entity::UsSsn => 5,
            Entity::EsDni => 6,
            Entity::NlBsn => 7,
            Entity::DateOfBirth => 8,
            Entity::IpAddress => 9,
            Entity::Phone => 10,
        }
    }
}

/// One value found: its kind and its byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub entity: Entity,
    pub range: Range<usize>,
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,62}\.){1,8}[a-z]{2,24}\b")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,5}){1,5}")
});
static CARD: LazyLock<Regex> = LazyLock::new(|| regex(r"\b\d(?:[ -]?\d){11,18}\b"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)[0-9a-f:]*:[0-9a-f:]*:[0-9a-f:]+"));
static SSN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{3})[- ](\d{2})[- ](\d{4})\b"));
static DNI: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:\d{8}|[XYZ]\d{7})-?[A-Z]\b"));
static NIR: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b")
});
static BSN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:bsn|burgerservicenummer|sofinummer|citizen service number)\b[^0-9\n]{0,24}(\d{9}|\d{4}\.\d{2}\.\d{3})\b",
    )
});
const MONTH: &str = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?";
static DOB: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(?:born(?: on| in)?|date of birth|d\.o\.b\.?|dob|birth ?date|birthday)\b(?:\s*(?:is|was|:|-|,))?\s*(\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|{MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{MONTH},? \d{{4}})\b"
    ))
});

/// Finds personal data of the configured kinds.
#[derive(Debug, Clone)]
pub struct PiiDetector {
    entities: Vec<Entity>,
    region: phonenumber::country::Id,
}

impl PiiDetector {
    /// Finds `entities`; phone numbers without a country code are read as numbers of `region`.
    pub fn new(entities: Vec<Entity>, region: phonenumber::country::Id) -> PiiDetector {
        PiiDetector { entities, region }
    }

    fn wants(&self, entity: Entity) -> bool {
        self.entities.contains(&entity)
    }

    /// Every value in `text`, in order, none overlapping another.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        let mut add = |entity: Entity, range: Range<usize>| found.push(Finding { entity, range });
        if self.wants(Entity::Secret) {
            secrets::find(text, &mut |r| add(Entity::Secret, r));
        }
        if self.wants(Entity::Email) {
            EMAIL
                .find_iter(text)
                .for_each(|m| add(Entity::Email, m.range()));
        }
        if self.wants(Entity::PaymentCard) {
            // A card may be followed by another number in the same run of digit groups.
            let mut at = 0;
            while let Some(m) = CARD.find_at(text, at) {
                let valid = group_ends(m.as_str()).find(|&end| {
                    checksums::digits(&m.as_str()[..end]).is_some_and(|d| checksums::luhn(&d))
                });
                match valid {
                    Some(end) => {
                        add(Entity::PaymentCard, m.start()..m.start() + end);
                        at = m.start() + end;
                    }
                    None => at = m.start() + 1,
                }
            }
        }
        if self.wants(Entity::Iban) {
            // The pattern may run on into the next word: scanning goes on after the IBAN found.
            let mut at = 0;
            while let Some(m) = IBAN.find_at(text, at) {
                match iban_end(m.as_str()) {
                    Some(end) => {
                        add(Entity::Iban, m.start()..m.start() + end);
                        at = m.start() + end;
                    }
                    None => at = m.start() + 1,
                }
            }
        }
        if self.wants(Entity::IpAddress) {
            IPV4.find_iter(text)
                .for_each(|m| add(Entity::IpAddress, m.range()));
            for m in IPV6.find_iter(text) {
                let candidate = m.as_str().trim_end_matches(':');
                let standalone = !text[..m.start()].ends_with(|c: char| c.is_alphanumeric())
                    && !text[m.end()..].starts_with(|c: char| c.is_alphanumeric());
                if standalone && Ipv6Addr::from_str(candidate).is_ok() {
                    add(Entity::IpAddress, m.start()..m.start() + candidate.len());
                }
            }
        }
        if self.wants(Entity::UsSsn) {
            for c in SSN.captures_iter(text) {
                if checksums::us_ssn(&c[1], &c[2], &c[3]) {
                    add(Entity::UsSsn, c.get(0).expect("whole match").range());
                }
            }
        }
        if self.wants(Entity::EsDni) {
            for m in DNI.find_iter(text) {
                if checksums::es_dni(m.as_str()) {
                    add(Entity::EsDni, m.range());
                }
            }
        }
        if self.wants(Entity::FrNir) {
            for m in NIR.find_iter(text) {
                if checksums::fr_nir(m.as_str()) {
                    add(Entity::FrNir, m.range());
                }
            }
        }
        if self.wants(Entity::NlBsn) {
            for c in BSN.captures_iter(text) {
                let number = c.get(1).expect("number group");
                if checksums::digits(number.as_str()).is_some_and(|d| checksums::nl_bsn(&d)) {
                    add(Entity::NlBsn, number.range());
                }
            }
        }
        if self.wants(Entity::DateOfBirth) {
            for c in DOB.captures_iter(text) {
                add(Entity::DateOfBirth, c.get(1).expect("date group").range());
            }
        }
        if self.wants(Entity::Phone) {
            self.phones(text, &mut add);
        }
        settle_overlaps(found)
    }

    /// Phone numbers: candidates of 7 to 15 digits standing alone, confirmed by libphonenumber's
    /// metadata for their country. A run of digit groups may hold a phone number followed by
    /// another number, so shorter prefixes (whole groups) are tried too.
    fn phones(&self, text: &str, add: &mut impl FnMut(Entity, Range<usize>)) {
        let mut at = 0;
        while let Some(m) = PHONE.find_at(text, at) {
            let before = text[..m.start()].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '+') {
                at = m.end();
                continue;
            }
            match self.phone_prefix(text, m.start(), m.as_str()) {
                Some(end) => {
                    add(Entity::Phone, m.start()..m.start() + end);
                    at = m.start() + end;
                }
                None => at = m.start() + 1,
            }
        }
    }

    /// The longest prefix of `candidate` (ending at a group boundary) that is a valid phone number
    /// standing alone.
    fn phone_prefix(&self, text: &str, start: usize, candidate: &str) -> Option<usize> {
        let country = (!candidate.starts_with('+')).then_some(self.region);
        for end in group_ends(candidate) {
            let prefix = &candidate[..end];
            let digits = prefix.chars().filter(char::is_ascii_digit).count();
            if digits < 7 {
                break;
            }
            if looks_like_a_date_or_a_count(prefix) {
                continue;
            }
            let after = text[start + end..].chars().next();
            if digits > 15 || after.is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            if phonenumber::parse(country, prefix).is_ok_and(|n| phonenumber::is_valid(&n)) {
                return Some(end);
            }
        }
        None
    }
}

/// A date (`2024-03-15`, `15.03.2024`) or a bare run of fewer than ten digits without a trunk
/// `0` (an order, ticket or build number): valid phone numbers in some countries' plans, but
/// not written as phone numbers.
fn looks_like_a_date_or_a_count(candidate: &str) -> bool {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        regex(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
    });
    let bare = candidate.chars().all(|c| c.is_ascii_digit());
    DATE.is_match(candidate) || (bare && candidate.len() < 10 && !candidate.starts_with('0'))
}

/// The ends of `candidate`'s digit groups, longest prefix first.
fn group_ends(candidate: &str) -> impl Iterator<Item = usize> + '_ {
    candidate
        .char_indices()
        .filter(|(i, c)| {
            c.is_ascii_digit() && !candidate[i + 1..].starts_with(|d: char| d.is_ascii_digit())
        })
        .map(|(i, _)| i + 1)
        .rev()
}

/// The length of the longest prefix of an IBAN candidate (whole groups) that passes mod 97: the
/// pattern may have run on into the next word.
fn iban_end(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        if checksums::iban(&candidate[..end]) {
            return Some(end);
        }
        end = candidate[..end].rfind(' ')?;
    }
}

/// Keeps, of overlapping findings, the more specific (then the longer, then the earlier).
fn settle_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| {
        (
            f.entity.priority(),
            std::cmp::Reverse(f.range.len()),
            f.range.start,
        )
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        if kept
            .iter()
            .all(|k| f.range.end <= k.range.start || f.range.start >= k.range.end)
        {
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.range.start);
    kept
}

#[cfg(test)]
mod tests;
