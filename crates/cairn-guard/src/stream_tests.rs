//! The guards on a stream, as the answer pipeline runs them: only settled text is checked and
//! sent, and the result equals the check of the whole text.

use std::sync::Arc;

use cairn_core::Guardrail;
use cairn_core::guard::{GuardScope, GuardStage, GuardVerdict};

use crate::{GuardAction, GuardKind, GuardOptions, GuardSection};

fn guard(kind: GuardKind, options: GuardOptions) -> Arc<dyn Guardrail> {
    GuardSection {
        name: format!("{kind:?}"),
        kind,
        stages: vec![GuardStage::Output],
        action: GuardAction::Redact,
        on_error: Default::default(),
        timeout_ms: None,
        options,
    }
    .build()
    .expect("builds")
}

fn guards() -> Vec<Arc<dyn Guardrail>> {
    vec![
        guard(GuardKind::Pii, GuardOptions::default()),
        guard(
            GuardKind::Banned,
            GuardOptions {
                words: Some(vec!["project falcon".into()]),
                ..GuardOptions::default()
            },
        ),
    ]
}

async fn check_all(guards: &[Arc<dyn Guardrail>], text: &str, scope: &mut GuardScope) -> String {
    let mut text = text.to_owned();
    for guard in guards {
        if let GuardVerdict::Redact { text: redacted, .. } = guard
            .check(GuardStage::Output, &text, scope)
            .await
            .expect("checks")
        {
            text = redacted;
        }
    }
    text
}

/// What a stream of `pieces` sends, part by part.
async fn streamed(guards: &[Arc<dyn Guardrail>], pieces: &[&str]) -> Vec<String> {
    let mut scope = GuardScope::default();
    let mut unsent = String::new();
    let mut sent = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        unsent.push_str(piece);
        let end = i + 1 == pieces.len();
        let cut = if end {
            unsent.len()
        } else {
            let settled: Vec<_> = guards
                .iter()
                .map(|g| g.settled(&unsent, scope.preceding()))
                .collect();
            cairn_core::guard::settled_cut(&settled, unsent.len())
        };
        if cut == 0 {
            continue;
        }
        let raw: String = unsent.drain(..cut).collect();
        let checked = check_all(guards, &raw, &mut scope).await;
        scope.sent(&raw);
        sent.push(checked);
    }
    sent
}

#[tokio::test]
async fn a_phrase_split_over_pieces_is_never_sent_in_part() {
    let guards = guards();
    let pieces = [
        "th", "e due ", "the ca", "ll ", "the", " the", " Proj", "ect Fa", "lc", "on the",
        " the t", "he",
    ];
    let sent = streamed(&guards, &pieces).await;
    let whole = check_all(&guards, &pieces.concat(), &mut GuardScope::default()).await;
    assert_eq!(sent.concat(), whole, "parts: {sent:?}");
}

#[tokio::test]
async fn every_chunking_of_a_text_sends_what_the_whole_check_shows() {
    let guards = guards();
    let text = "Write to jane.doe@example.com or call (202) 555-0143 123-45-6789, she was born on \
                March 3, 1990; the card 4111 1111 1111 1111 and Project Falcon are secret.";
    let whole = check_all(&guards, text, &mut GuardScope::default()).await;
    for size in 1..12 {
        let pieces: Vec<&str> = text
            .as_bytes()
            .chunks(size)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        let sent = streamed(&guards, &pieces).await;
        assert_eq!(sent.concat(), whole, "pieces of {size}: {sent:?}");
    }
}

const WRITTEN: [&str; 9] = [
    "jane.doe@example.com",
    "(202) 555-0143",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "AKIAIOSFODNN7EXAMPLE",
    "born on March 3, 1990",
    "Project Falcon",
];
const WORDS: [&str; 12] = [
    "the", "report", "is", "due", "call", "write", "to", "born", "card", "and", "IBAN", "today.",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, failure_persistence: None, ..Default::default() })]
    #[test]
    fn random_texts_stream_as_they_check_whole(
        segments in proptest::collection::vec(
            proptest::prop_oneof![
                3 => proptest::sample::select(WORDS.to_vec()),
                1 => proptest::sample::select(WRITTEN.to_vec()),
            ],
            1..24,
        ),
        sizes in proptest::collection::vec(1usize..14, 1..80),
    ) {
        let text = segments.join(" ");
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        for size in sizes.iter().cycle() {
            if rest.is_empty() { break; }
            let cut = (*size).min(rest.len());
            pieces.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let guards = guards();
        let sent = runtime.block_on(streamed(&guards, &pieces));
        let whole = runtime.block_on(check_all(&guards, &text, &mut GuardScope::default()));
        proptest::prop_assert_eq!(sent.concat(), whole, "pieces: {:?}", pieces);
    }
}
