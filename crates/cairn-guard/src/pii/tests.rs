//! The detectors on running text: each kind found with its context, look-alikes left alone.

use super::*;

fn detector() -> PiiDetector {
    PiiDetector::new(Entity::ALL.to_vec(), phonenumber::country::Id::US)
}

fn found(text: &str) -> Vec<(Entity, &str)> {
    detector()
        .find(text)
        .into_iter()
        .map(|f| (f.entity, &text[f.range]))
        .collect()
}

#[test]
fn each_kind_is_found_in_running_text() {
    let cases: &[(&str, Entity, &str)] = &[
        (
            "Write to jane.doe+hr@example.co.uk today.",
            Entity::Email,
            "jane.doe+hr@example.co.uk",
        ),
        (
            "Call (202) 555-0143 after nine.",
            Entity::Phone,
            "(202) 555-0143",
        ),
        (
            "Call +44 20 7946 0958 in London.",
            Entity::Phone,
            "+44 20 7946 0958",
        ),
        (
            "Ruf an: +49 30 123456, danke.",
            Entity::Phone,
            "+49 30 123456",
        ),
        (
            "Card 4111 1111 1111 1111 expires soon.",
            Entity::PaymentCard,
            "4111 1111 1111 1111",
        ),
        (
            "Pay to DE89 3704 0044 0532 0130 00 by Friday.",
            Entity::Iban,
            "DE89 3704 0044 0532 0130 00",
        ),
        (
            "The host 192.168.10.24 is down.",
            Entity::IpAddress,
            "192.168.10.24",
        ),
        (
            "Route via 2001:db8::8a2e:370:7334 now.",
            Entity::IpAddress,
            "2001:db8::8a2e:370:7334",
        ),
        ("SSN 123-45-6789 on file.", Entity::UsSsn, "123-45-6789"),
        ("Mi DNI es 12345678Z.", Entity::EsDni, "12345678Z"),
        ("NIE X1234567L vigente.", Entity::EsDni, "X1234567L"),
        (
            "NIR 2 84 12 76 451 089 93 connu.",
            Entity::FrNir,
            "2 84 12 76 451 089 93",
        ),
        ("Mijn BSN is 111222333.", Entity::NlBsn, "111222333"),
        (
            "She was born on March 3, 1990 in Leeds.",
            Entity::DateOfBirth,
            "March 3, 1990",
        ),
        (
            "Date of birth: 03/04/1985.",
            Entity::DateOfBirth,
            "03/04/1985",
        ),
        (
            "token=ghp_0123456789abcdefghijABCDEFGHIJ012345",
            Entity::Secret,
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        ),
    ];
    for (text, entity, value) in cases {
        assert_eq!(found(text), [(*entity, *value)], "in {text:?}");
    }
}

#[test]
fn look_alikes_are_not_personal_data() {
    for text in [
        "Version 1.2.3 was released in 2024-01-15.",
        "Order 4111 1111 1111 1112 is not a card (Luhn fails).",
        "The build took 1234567 ms.",
        "Pay to DE89 3704 0044 0532 0130 01 (bad check digits).",
        "SSN 666-45-6789 cannot exist.",
        "The reference 123456789 has no context.",
        "Meet at 10:30:45 in room 12.",
        "The password is required for every account.",
    ] {
        assert_eq!(found(text), [], "in {text:?}");
    }
}

#[test]
fn an_iban_ends_where_its_check_digits_say() {
    assert_eq!(
        found("IBAN GB82 WEST 1234 5698 7654 32 ABCD please"),
        [(Entity::Iban, "GB82 WEST 1234 5698 7654 32")]
    );
}

#[test]
fn only_configured_kinds_are_found() {
    let emails_only = PiiDetector::new(vec![Entity::Email], phonenumber::country::Id::US);
    let text = "a@b.example or (202) 555-0143";
    let kinds: Vec<Entity> = emails_only
        .find(text)
        .into_iter()
        .map(|f| f.entity)
        .collect();
    assert_eq!(kinds, [Entity::Email]);
}
