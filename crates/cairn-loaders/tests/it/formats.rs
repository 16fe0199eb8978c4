//! Markdown, text, HTML and JSON documents from files and bytes.

use cairn_loaders::{Format, JsonOptions, LoadOptions, load_bytes};
use serde_json::Value;

use crate::{check_heading_lines, line_at, load_one, write};

#[test]
fn markdown_file_keeps_its_text_and_finds_headings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "---\ntitle: Front title\ntags:\n  - rag\n  - docs\nversion: 2\n---\n\n# Cairn guide\n\nIntro with ünïcödé.\n\n## Install\n\nRun it.\n\nConfigure\n---------\n\n### Details `x`\n\n```\n# not a heading\n```\n";
    let path = write(dir.path(), "guide.md", text);
    let document = load_one(&path);

    let canonical = std::fs::canonicalize(&path).expect("canonical");
    assert_eq!(document.source, canonical.display().to_string());
    assert!(std::path::Path::new(&document.source).is_absolute());
    assert_eq!(document.format, Format::Markdown);
    assert_eq!(document.text, text, "the text is the file");
    assert_eq!(
        document.title, "Cairn guide",
        "the first H1 wins over the front matter"
    );
    assert_eq!(document.url, None);

    let outline: Vec<(u8, &str)> = document
        .headings
        .iter()
        .map(|h| (h.level, h.title.as_str()))
        .collect();
    assert_eq!(
        outline,
        [
            (1, "Cairn guide"),
            (2, "Install"),
            (2, "Configure"),
            (3, "Details x")
        ]
    );
    check_heading_lines(&document);
    assert_eq!(
        line_at(&document, document.headings[0].char_offset),
        "# Cairn guide"
    );
    assert_eq!(
        line_at(&document, document.headings[1].char_offset),
        "## Install"
    );
    assert_eq!(
        line_at(&document, document.headings[2].char_offset),
        "Configure",
        "setext"
    );
    assert_eq!(
        line_at(&document, document.headings[3].char_offset),
        "### Details `x`"
    );

    assert_eq!(document.metadata["title"], "Front title");
    assert_eq!(document.metadata["tags"], "rag, docs");
    assert_eq!(document.metadata["version"], 2);
    assert_eq!(document.metadata["format"], "markdown");
    assert!(
        document
            .metadata
            .values()
            .all(|v| !v.is_object() && !v.is_array())
    );
}

#[test]
fn markdown_title_falls_back_to_front_matter_then_file_stem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_front_matter = write(
        dir.path(),
        "a.md",
        "---\ntitle: From front matter\n---\n\n## Only H2\n\nText.\n",
    );
    assert_eq!(load_one(&with_front_matter).title, "From front matter");
    let bare = write(dir.path(), "release-notes.markdown", "Just text.\n");
    assert_eq!(load_one(&bare).title, "release-notes");
}

#[test]
fn text_strips_the_bom_keeps_crlf_and_is_titled_by_name() {
    let documents = load_bytes(
        "upload:notes.txt",
        b"\xEF\xBB\xBFline one\r\nline two\r\n",
        Format::Text,
        &LoadOptions::default(),
    )
    .expect("loads");
    let document = &documents[0];
    assert_eq!(document.text, "line one\r\nline two\r\n");
    assert_eq!(document.title, "notes");
    assert_eq!(document.source, "upload:notes.txt");
    assert!(document.headings.is_empty());
    assert_eq!(document.metadata["format"], "text");
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <title>Cairn &ndash; Guide</title>
  <style>body { color: red }</style>
  <script>var tracking = "SCRIPT_TEXT";</script>
</head>
<body>
  <header><a href="/">Site name HEADER_TEXT</a></header>
  <nav><ul><li><a href="/a">NAV_TEXT</a></li></ul></nav>
  <main>
    <h1>Getting   started</h1>
    <p>Cairn is an <b>LLMOps</b> platform &amp; more.</p>
    <h2 id="install">Install</h2>
    <ul><li>Download</li><li>Run <code>cairn serve</code></li></ul>
    <pre>cargo install cairn
  --locked</pre>
    <form><button>FORM_TEXT</button></form>
    <h3>Configure</h3>
    <p>Edit the file.<script>document.write("INLINE_SCRIPT")</script></p>
    <aside>ASIDE_TEXT</aside>
  </main>
  <footer>FOOTER_TEXT</footer>
  <noscript>NOSCRIPT_TEXT</noscript>
</body>
</html>"#;

#[test]
fn html_keeps_the_main_content_and_its_headings() {
    let documents = load_bytes(
        "https://example.com/guide",
        PAGE.as_bytes(),
        Format::Html,
        &LoadOptions::default(),
    )
    .expect("loads");
    let document = &documents[0];
    for gone in [
        "SCRIPT_TEXT",
        "HEADER_TEXT",
        "NAV_TEXT",
        "FORM_TEXT",
        "INLINE_SCRIPT",
        "ASIDE_TEXT",
        "FOOTER_TEXT",
        "NOSCRIPT_TEXT",
        "color: red",
    ] {
        assert!(
            !document.text.contains(gone),
            "{gone} should be gone: {}",
            document.text
        );
    }
    assert_eq!(
        document.text,
        "# Getting started\n\nCairn is an LLMOps platform & more.\n\n## Install\n\n- Download\n- Run cairn serve\n\ncargo install cairn\n  --locked\n\n### Configure\n\nEdit the file."
    );
    assert_eq!(document.title, "Cairn – Guide");
    assert_eq!(document.url.as_deref(), Some("https://example.com/guide"));
    assert_eq!(document.metadata["language"], "en");
    let outline: Vec<(u8, &str)> = document
        .headings
        .iter()
        .map(|h| (h.level, h.title.as_str()))
        .collect();
    assert_eq!(
        outline,
        [(1, "Getting started"), (2, "Install"), (3, "Configure")]
    );
    check_heading_lines(document);
    for heading in &document.headings {
        let line = line_at(document, heading.char_offset);
        assert_eq!(
            line,
            format!(
                "{} {}",
                "#".repeat(usize::from(heading.level)),
                heading.title
            )
        );
    }
}

#[test]
fn html_without_title_uses_the_first_h1_and_offsets_count_characters() {
    let html = "<body><p>Préambule élégant</p><h1>Über</h1><p>Ça marche.</p><h2>Zweite</h2></body>";
    let documents = load_bytes(
        "upload:page.html",
        html.as_bytes(),
        Format::Html,
        &LoadOptions::default(),
    )
    .expect("loads");
    let document = &documents[0];
    assert_eq!(document.title, "Über");
    assert_eq!(document.url, None);
    check_heading_lines(document);
    assert_eq!(
        document.headings[0].char_offset,
        "Préambule élégant\n\n".chars().count()
    );
    assert_eq!(
        line_at(document, document.headings[1].char_offset),
        "## Zweite"
    );
}

#[test]
fn json_array_gives_one_document_per_record() {
    let json = r#"[
        {"id": "faq-1", "question": "What is Cairn?", "answer": "An LLMOps platform.", "meta": {"lang": "en", "tags": ["a", "b"]}, "link": "https://example.com/faq#1"},
        {"id": 2, "question": "Why?", "answer": ["Because.", "Really."], "meta": {"lang": "fr"}}
    ]"#;
    let options = LoadOptions {
        json: JsonOptions {
            text_fields: vec!["body".into(), "answer".into()],
            title_field: Some("question".into()),
            id_field: Some("id".into()),
            url_field: Some("link".into()),
            metadata_fields: vec!["meta.lang".into(), "meta".into()],
        },
        ..LoadOptions::default()
    };
    let documents =
        load_bytes("/data/faq.json", json.as_bytes(), Format::Json, &options).expect("loads");
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0].source, "/data/faq.json#faq-1");
    assert_eq!(documents[0].title, "What is Cairn?");
    assert_eq!(documents[0].text, "An LLMOps platform.");
    assert_eq!(
        documents[0].url.as_deref(),
        Some("https://example.com/faq#1")
    );
    assert_eq!(documents[0].metadata["meta.lang"], "en");
    assert_eq!(documents[0].metadata["meta.tags"], "a, b");
    assert_eq!(documents[0].metadata["record"], 0);
    assert_eq!(documents[0].metadata["record_id"], "faq-1");
    assert_eq!(documents[0].format, Format::Json);
    assert_eq!(documents[1].source, "/data/faq.json#2");
    assert_eq!(documents[1].text, "Because.\n\nReally.");
    assert_eq!(documents[1].url, None);
    for document in &documents {
        assert!(
            document
                .metadata
                .values()
                .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        );
    }
}

#[test]
fn jsonl_records_are_numbered_and_single_objects_are_one_record() {
    let jsonl = "{\"text\": \"first\"}\n\n{\"content\": \"second\", \"title\": \"ignored\"}\r\n";
    let documents = load_bytes(
        "upload:notes.jsonl",
        jsonl.as_bytes(),
        Format::Jsonl,
        &LoadOptions::default(),
    )
    .expect("loads");
    let sources: Vec<&str> = documents.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(sources, ["upload:notes.jsonl#0", "upload:notes.jsonl#1"]);
    assert_eq!(documents[1].text, "second");
    assert_eq!(documents[1].title, "notes #1");
    assert_eq!(documents[1].format, Format::Jsonl);

    let single = load_bytes(
        "/d/one.json",
        br#"{"body": "only one"}"#,
        Format::Json,
        &LoadOptions::default(),
    )
    .expect("loads");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].source, "/d/one.json#0");
    assert_eq!(single[0].text, "only one");
}

#[test]
fn json_from_a_url_links_each_record_to_it() {
    let documents = load_bytes(
        "https://example.com/data.json",
        br#"[{"text": "a"}]"#,
        Format::Json,
        &LoadOptions::default(),
    )
    .expect("loads");
    assert_eq!(documents[0].source, "https://example.com/data.json#0");
    assert_eq!(
        documents[0].url.as_deref(),
        Some("https://example.com/data.json")
    );
}
