//! Markdown: the text is the file itself (so offsets point into the source), headings come from
//! pulldown-cmark's offset iterator (ATX and setext), and YAML (`---`) or TOML (`+++`) front matter
//! becomes flat metadata. It renders nothing.

use pulldown_cmark::{Event, MetadataBlockKind, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value};

use crate::{
    CharOffsets, DocumentError, Format, Heading, LoadedDocument, fallback_title, flatten_into,
};

/// Loads a Markdown document from its (decoded, non-empty) text.
pub(crate) fn load(source: &str, text: &str) -> Result<LoadedDocument, DocumentError> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS;

    let mut offsets = CharOffsets::new(text);
    let mut headings = Vec::new();
    // The heading being read: its start and level, and its title so far.
    let mut open_heading: Option<(usize, u8, String)> = None;
    let mut front_matter: Option<(MetadataBlockKind, String)> = None;
    let mut in_front_matter = false;
    let mut front_matter_end = 0usize;

    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::MetadataBlock(kind)) => {
                in_front_matter = true;
                front_matter = Some((kind, String::new()));
            }
            Event::End(TagEnd::MetadataBlock(_)) => {
                in_front_matter = false;
                front_matter_end = range.end;
            }
            Event::Text(t) if in_front_matter => {
                if let Some((_, content)) = front_matter.as_mut() {
                    content.push_str(&t);
                }
            }
            Event::Start(Tag::Heading { level, .. }) => {
                open_heading = Some((range.start, level as u8, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((start, level, title)) = open_heading.take() {
                    let title = collapse_whitespace(&title);
                    if !title.is_empty() {
                        headings.push(Heading {
                            char_offset: offsets.of(line_start(text, start)),
                            level,
                            title,
                        });
                    }
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, title)) = open_heading.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = open_heading.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }

    if text[front_matter_end.min(text.len())..].trim().is_empty() {
        return Err(DocumentError::new(
            source,
            "has no content after its front matter; add some text or leave it out of the ingest",
        ));
    }

    let mut metadata = Map::new();
    if let Some((kind, content)) = front_matter {
        for (key, value) in parse_front_matter(source, kind, &content) {
            flatten_into(&mut metadata, &key, &value, 0);
        }
    }
    let front_matter_title = metadata
        .get("title")
        .and_then(Value::as_str)
        .map(collapse_whitespace)
        .filter(|t| !t.is_empty());
    metadata.insert("format".into(), Value::from(Format::Markdown.as_str()));

    let title = headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.title.clone())
        .or(front_matter_title)
        .unwrap_or_else(|| fallback_title(source));

    Ok(LoadedDocument {
        source: source.to_owned(),
        title,
        text: text.to_owned(),
        format: Format::Markdown,
        headings,
        url: None,
        metadata,
    })
}

/// A heading's section starts at the start of its line: pulldown-cmark's range starts at the `#`
/// (or the setext title's first line), after any indentation and any container prefix (`> `,
/// `- `) that belongs to the same line.
fn line_start(text: &str, start: usize) -> usize {
    let before = &text[..start.min(text.len())];
    before.rfind('\n').map_or(0, |i| i + 1)
}

/// Front matter as key/value pairs. Front matter that does not parse is logged and left out rather
/// than failing the document: its text is still worth indexing.
fn parse_front_matter(
    source: &str,
    kind: MetadataBlockKind,
    content: &str,
) -> Vec<(String, Value)> {
    let parsed: Result<Value, String> = match kind {
        MetadataBlockKind::YamlStyle => {
            serde_saphyr::from_str::<Value>(content).map_err(|e| e.to_string())
        }
        MetadataBlockKind::PlusesStyle => toml::from_str::<toml::Table>(content)
            .map(|table| toml_to_json(toml::Value::Table(table)))
            .map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(Value::Object(fields)) => fields.into_iter().collect(),
        Ok(_) => Vec::new(),
        Err(error) => {
            tracing::warn!(source, %error, "front matter does not parse; its fields are left out of the metadata");
            Vec::new()
        }
    }
}

/// TOML to JSON by hand, so that dates become strings (serde would give them a private wrapper).
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(text: &str) -> LoadedDocument {
        load("/docs/guide.md", text).expect("loads")
    }

    /// Each heading's offset is the start of its line, and the line holds its title.
    fn check_headings(document: &LoadedDocument, expected: &[(u8, &str)]) {
        let chars: Vec<char> = document.text.chars().collect();
        let got: Vec<(u8, &str)> = document
            .headings
            .iter()
            .map(|h| (h.level, h.title.as_str()))
            .collect();
        assert_eq!(got, expected);
        for heading in &document.headings {
            assert!(
                heading.char_offset == 0 || chars[heading.char_offset - 1] == '\n',
                "{heading:?}"
            );
            let line: String = chars[heading.char_offset..]
                .iter()
                .take_while(|c| **c != '\n')
                .collect();
            let title_word = heading.title.split(' ').next().unwrap_or_default();
            assert!(
                line.contains(title_word),
                "{heading:?} starts line {line:?}"
            );
        }
    }

    #[test]
    fn atx_and_setext_headings_with_char_offsets() {
        let text = "# Grüße\n\nÜber uns.\n\n## Install `cairn`\n\nText.\n\nSetext title\n------------\n\n   ### Indented\n";
        let document = load_ok(text);
        check_headings(
            &document,
            &[
                (1, "Grüße"),
                (2, "Install cairn"),
                (2, "Setext title"),
                (3, "Indented"),
            ],
        );
        assert_eq!(document.headings[0].char_offset, 0);
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[document.headings[1].char_offset], '#');
        assert_eq!(document.title, "Grüße");
        assert_eq!(document.text, text);
    }

    #[test]
    fn yaml_front_matter_goes_to_metadata_not_headings() {
        let text = "---\ntitle: The Guide\ntags: [rag, search]\nweight: 3\ndraft: false\nauthor:\n  name: Ann\n# a comment\n---\n\nIntro.\n\n## Part\n";
        let document = load_ok(text);
        check_headings(&document, &[(2, "Part")]);
        assert_eq!(
            document.title, "The Guide",
            "no H1: the front matter's title"
        );
        assert_eq!(document.metadata["tags"], "rag, search");
        assert_eq!(document.metadata["weight"], 3);
        assert_eq!(document.metadata["draft"], false);
        assert_eq!(document.metadata["author.name"], "Ann");
        assert_eq!(document.metadata["format"], "markdown");
    }

    #[test]
    fn toml_front_matter() {
        let text = "+++\ntitle = \"T\"\ntags = [\"a\", \"b\"]\ndate = 2024-05-01\n+++\n\n# Real title\n\nBody.\n";
        let document = load_ok(text);
        assert_eq!(
            document.title, "Real title",
            "an H1 wins over the front matter"
        );
        assert_eq!(document.metadata["title"], "T");
        assert_eq!(document.metadata["tags"], "a, b");
        assert_eq!(document.metadata["date"], "2024-05-01");
        check_headings(&document, &[(1, "Real title")]);
    }

    #[test]
    fn malformed_front_matter_is_left_out() {
        let document = load_ok("---\ntitle: [unclosed\n---\n\nBody text.\n");
        assert_eq!(document.title, "guide");
        assert_eq!(document.metadata.len(), 1);
    }

    #[test]
    fn headings_in_containers_start_at_their_line() {
        let document = load_ok("Intro\n\n> ## Quoted\n\n- # In a list\n");
        check_headings(&document, &[(2, "Quoted"), (1, "In a list")]);
        assert_eq!(document.headings[0].char_offset, 7);
    }

    #[test]
    fn crlf_offsets_stay_consistent() {
        let text = "Intro\r\n\r\n## Über\r\n\r\nText\r\n";
        let document = load_ok(text);
        check_headings(&document, &[(2, "Über")]);
    }

    #[test]
    fn front_matter_alone_is_empty() {
        let error = load("/d/x.md", "---\ntitle: x\n---\n\n").expect_err("no content");
        assert!(error.reason.contains("no content"), "{error}");
    }
}
