//! Document loaders: Markdown, plain text, HTML, PDF and JSON/JSONL from files, uploads and URLs,
//! turned into text with its heading structure for the RAG ingest pipeline.
//!
//! This crate reads and converts; it does no chunking, embedding or storage, and it does not know
//! the catalog. A loaded document's `text` is what chunks and citations point into, so every
//! offset this crate reports ([`Heading::char_offset`]) is a *character* offset into that text.
//!
//! - [`discover`] lists the files under a path (honouring `.gitignore`, skipping hidden files).
//! - [`load_file`] and [`load_bytes`] turn one file or one byte buffer into documents (one per
//!   record for JSON arrays and JSONL, exactly one otherwise).
//! - [`fetch_url`] downloads an http(s) URL with SSRF protection, a timeout and a size limit.
//!
//! Every failure is a [`DocumentError`] that names the document and says what is wrong and how to
//! fix it (naming the `[ingest]` setting of `cairn.toml` that changes the behaviour, where there is
//! one); a loader that panics on hostile input (PDF parsing) is contained and reported the same
//! way.

mod discover;
mod fetch;
mod html;
mod json;
mod markdown;
mod pdf;
mod pdf_bomb;
mod text;

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

pub use discover::{DiscoverOptions, discover};
pub use fetch::{FetchOptions, Fetched, MAX_REDIRECTS, fetch_url, restricted_address_kind};
pub use json::JsonOptions;

/// The formats Cairn reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// CommonMark with GitHub extensions and YAML (`---`) or TOML (`+++`) front matter.
    Markdown,
    /// Plain UTF-8 text (also reStructuredText, read as plain text).
    Text,
    /// An HTML page; only its main content is kept.
    Html,
    /// A PDF with a text layer.
    Pdf,
    /// A JSON object (one document) or an array of objects (one document per record).
    Json,
    /// JSON Lines: one object per line, one document per record.
    Jsonl,
}

/// File extensions (lowercase, without the dot) and the format each one is read as.
pub const EXTENSIONS: &[(&str, Format)] = &[
    ("md", Format::Markdown),
    ("markdown", Format::Markdown),
    ("mdx", Format::Markdown),
    ("txt", Format::Text),
    ("text", Format::Text),
    ("rst", Format::Text),
    ("html", Format::Html),
    ("htm", Format::Html),
    ("pdf", Format::Pdf),
    ("json", Format::Json),
    ("jsonl", Format::Jsonl),
    ("ndjson", Format::Jsonl),
];

impl Format {
    /// The format a file is read as, from its extension (case-insensitive); `None` when the
    /// extension is not one of [`EXTENSIONS`].
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        EXTENSIONS
            .iter()
            .find(|(known, _)| *known == extension)
            .map(|(_, format)| *format)
    }

    /// The format a MIME type names (`text/html; charset=utf-8` → HTML), ignoring parameters;
    /// `None` for types that do not name one of Cairn's formats, including `text/plain` and
    /// `application/octet-stream`, which servers send for anything (see [`Format::detect`]).
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/markdown" | "text/x-markdown" => Some(Format::Markdown),
            "text/html" | "application/xhtml+xml" => Some(Format::Html),
            "application/pdf" | "application/x-pdf" => Some(Format::Pdf),
            "application/json" | "text/json" => Some(Format::Json),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/ndjson" => Some(Format::Jsonl),
            "text/x-rst" => Some(Format::Text),
            _ => None,
        }
    }

    /// The format of a URL's resource from the extension of its path (`…/guide.md` → Markdown).
    pub fn from_url(url: &str) -> Option<Format> {
        let parsed = url::Url::parse(url).ok()?;
        let last_segment = parsed.path_segments()?.next_back()?.to_owned();
        Format::from_path(Path::new(&last_segment))
    }

    /// Picks the format of a downloaded resource: a content type that names a format wins, except
    /// that a URL ending in `.jsonl`/`.ndjson` served as JSON is JSON Lines and a `.md` served as
    /// HTML stays HTML; otherwise the URL's extension; otherwise `text/*` is plain text. `None`
    /// when nothing says what it is (say, `application/octet-stream` at a URL without extension).
    pub fn detect(content_type: Option<&str>, url: &str) -> Option<Format> {
        let by_type = content_type.and_then(Format::from_content_type);
        let by_url = Format::from_url(url);
        match (by_type, by_url) {
            (Some(Format::Json), Some(Format::Jsonl)) => Some(Format::Jsonl),
            (Some(format), _) => Some(format),
            (None, Some(format)) => Some(format),
            (None, None) => {
                let is_text = content_type
                    .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/"));
                is_text.then_some(Format::Text)
            }
        }
    }

    /// The lowercase name stored in metadata (`"markdown"`, `"pdf"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A heading: where a section of the document starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Heading {
    /// Character (not byte) offset in [`LoadedDocument::text`] where the heading's line starts
    /// (the `#` of a Markdown ATX heading, the title line of a setext heading, the first character
    /// of a PDF page).
    pub char_offset: usize,
    /// 1 to 6 (PDF pages are level 1).
    pub level: u8,
    /// The heading's text, without Markdown markup.
    pub title: String,
}

/// One document, ready to be chunked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadedDocument {
    /// Canonical id, unique per collection: the absolute path of a file, the URL of a download,
    /// `upload:<name>` for an upload, and `<source>#<id or record index>` for a JSON/JSONL record.
    pub source: String,
    /// Markdown: the first H1, else the front matter's `title`, else the file stem. HTML: `<title>`,
    /// else the first `<h1>`. PDF: the Info dictionary's Title, else the file stem. JSON: the
    /// configured title field, else the record's id, else `<file stem> #<record index>`. Plain
    /// text: the file stem.
    pub title: String,
    /// The text that chunks and citations point into (offsets are in characters). Markdown and
    /// plain text keep the file's content as it is, less a byte-order mark (line endings are not
    /// normalised, so offsets match the file); HTML is rendered to Markdown-like text; a PDF is its
    /// pages' text joined by blank lines.
    pub text: String,
    /// The format it was read as.
    pub format: Format,
    /// Headings in order of offset: Markdown and HTML headings, one per page for a PDF.
    pub headings: Vec<Heading>,
    /// An http(s) link to the source, when it has one.
    pub url: Option<String>,
    /// Flat metadata: string, number and bool values only (`format`, `pages`, front-matter fields,
    /// configured JSON fields…). Nested values are flattened to dotted keys and lists of scalars
    /// joined with `", "`.
    pub metadata: Map<String, Value>,
}

/// Why a document could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The document, as in [`LoadedDocument::source`] (a path, a URL, `upload:<name>`, a record).
    pub source: String,
    /// What is wrong and how to fix it, lowercase, without a trailing dot.
    pub reason: String,
}

impl DocumentError {
    /// An error about `source`.
    pub fn new(source: impl Into<String>, reason: impl Into<String>) -> DocumentError {
        DocumentError {
            source: source.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

impl std::error::Error for DocumentError {}

/// 50 MiB: the default of [`LoadOptions::max_bytes`] and [`FetchOptions::max_bytes`].
pub const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * 1024;

/// 512 MiB: the default of [`LoadOptions::max_pdf_expanded_bytes`], ten times the largest
/// document, far beyond what a PDF's text and fonts need.
pub const DEFAULT_MAX_PDF_EXPANDED_BYTES: u64 = 512 * 1024 * 1024;

/// How documents are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which fields of a JSON record hold its text, title, id and metadata.
    pub json: JsonOptions,
    /// Larger inputs are refused (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
    /// PDFs whose compressed streams expand past this, together, are refused before they are
    /// parsed (default [`DEFAULT_MAX_PDF_EXPANDED_BYTES`]).
    pub max_pdf_expanded_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            json: JsonOptions::default(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_pdf_expanded_bytes: DEFAULT_MAX_PDF_EXPANDED_BYTES,
        }
    }
}

/// Loads documents from bytes in a known format. `source` is the documents' id (see
/// [`LoadedDocument::source`]); when it is an http(s) URL it also becomes their `url`, and its
/// last path segment (or file name) is the fallback title.
///
/// Returns one document per record for JSON arrays and JSONL, exactly one otherwise.
pub fn load_bytes(
    source: &str,
    bytes: &[u8],
    format: Format,
    options: &LoadOptions,
) -> Result<Vec<LoadedDocument>, DocumentError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > options.max_bytes {
        return Err(too_large(source, size, options.max_bytes));
    }
    let mut documents = match format {
        Format::Pdf => vec![pdf::load(source, bytes, options.max_pdf_expanded_bytes)?],
        Format::Markdown => vec![markdown::load(source, &text::decode(source, bytes)?)?],
        Format::Text => vec![text::load(source, text::decode(source, bytes)?)],
        Format::Html => {
            let bytes = text::html_to_utf8(bytes);
            vec![html::load(source, &text::decode(source, &bytes)?)?]
        }
        Format::Json => json::load_json(source, &text::decode(source, bytes)?, &options.json)?,
        Format::Jsonl => json::load_jsonl(source, &text::decode(source, bytes)?, &options.json)?,
    };
    if is_http_url(source) {
        for document in &mut documents {
            document.url.get_or_insert_with(|| source.to_owned());
        }
    }
    Ok(documents)
}

/// Loads a file, its format picked by its extension. The documents' source is the file's absolute
/// (canonical) path.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Vec<LoadedDocument>, DocumentError> {
    let shown = path.display().to_string();
    let canonical = std::fs::canonicalize(path).map_err(|e| io_error(&shown, &e))?;
    let source = canonical.display().to_string();
    let Some(format) = Format::from_path(&canonical) else {
        let extension = canonical
            .extension()
            .map(|e| format!("`.{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "no extension".to_owned());
        return Err(DocumentError::new(
            source,
            format!(
                "unsupported file type ({extension}); supported extensions: {}",
                supported_extensions()
            ),
        ));
    };
    let metadata = std::fs::metadata(&canonical).map_err(|e| io_error(&source, &e))?;
    if !metadata.is_file() {
        return Err(DocumentError::new(source, "is not a regular file"));
    }
    if metadata.len() > options.max_bytes {
        return Err(too_large(&source, metadata.len(), options.max_bytes));
    }
    let bytes = std::fs::read(&canonical).map_err(|e| io_error(&source, &e))?;
    load_bytes(&source, &bytes, format, options)
}

/// The supported extensions, for messages: `.md, .markdown, …`.
pub fn supported_extensions() -> String {
    EXTENSIONS
        .iter()
        .map(|(extension, _)| format!(".{extension}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_error(source: &str, error: &std::io::Error) -> DocumentError {
    let reason = match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist; check the path".to_owned(),
        std::io::ErrorKind::PermissionDenied => {
            "cannot be read (permission denied); check its permissions".to_owned()
        }
        _ => format!("cannot be read ({error})"),
    };
    DocumentError::new(source, reason)
}

fn too_large(source: &str, size: u64, limit: u64) -> DocumentError {
    DocumentError::new(
        source,
        format!(
            "is {} ({size} bytes), over the limit of {} ({limit} bytes); raise [ingest] max_document_bytes to load it",
            human_size(size),
            human_size(limit)
        ),
    )
}

/// `52428800` → `"50.0 MiB"`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    // Precision is irrelevant for a message; the exact byte count is printed beside it.
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64;
    if value >= KIB * KIB * KIB {
        format!("{:.1} GiB", value / (KIB * KIB * KIB))
    } else if value >= KIB * KIB {
        format!("{:.1} MiB", value / (KIB * KIB))
    } else if value >= KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

pub(crate) fn is_http_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The title used when a document has none of its own: the file stem of the source's last path
/// segment (`/docs/guide.md` → `guide`, `upload:notes.txt` → `notes`,
/// `https://example.com/a/page.html?x=1` → `page`), or the source itself.
pub(crate) fn fallback_title(source: &str) -> String {
    let without_scheme = source.strip_prefix("upload:").unwrap_or(source);
    let path = if is_http_url(source) {
        url::Url::parse(source)
            .ok()
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    } else {
        without_scheme.to_owned()
    };
    let last = path
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let stem = Path::new(last)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !stem.is_empty() {
        return stem;
    }
    if is_http_url(source) {
        // A site root: the host is the best name there is.
        if let Some(host) = url::Url::parse(source)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            return host;
        }
    }
    source.to_owned()
}

/// Adds `value` to flat metadata under `key`: scalars as they are, lists of scalars joined with
/// `", "`, objects flattened to `key.sub` keys; nulls and lists holding objects are left out.
pub(crate) fn flatten_into(
    metadata: &mut Map<String, Value>,
    key: &str,
    value: &Value,
    depth: usize,
) {
    match value {
        Value::Null => {}
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            metadata.insert(key.to_owned(), value.clone());
        }
        Value::Array(items) => {
            let scalars: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            if let Some(scalars) = scalars {
                metadata.insert(key.to_owned(), Value::String(scalars.join(", ")));
            }
        }
        Value::Object(fields) => {
            // Deeper nesting than this is not metadata anyone filters on.
            if depth >= 4 {
                return;
            }
            for (sub, sub_value) in fields {
                flatten_into(metadata, &format!("{key}.{sub}"), sub_value, depth + 1);
            }
        }
    }
}

/// Converts increasing byte offsets of a string into character offsets in one pass.
#[derive(Debug)]
pub(crate) struct CharOffsets<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharOffsets<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        CharOffsets {
            text,
            byte: 0,
            chars: 0,
        }
    }

    /// The character offset of `byte` (clamped to the text, rounded down to a char boundary).
    pub(crate) fn of(&mut self, byte: usize) -> usize {
        let mut byte = byte.min(self.text.len());
        while !self.text.is_char_boundary(byte) {
            byte -= 1;
        }
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extensions() {
        let cases = [
            ("a/b.md", Some(Format::Markdown)),
            ("B.MARKDOWN", Some(Format::Markdown)),
            ("x.mdx", Some(Format::Markdown)),
            ("x.txt", Some(Format::Text)),
            ("x.rst", Some(Format::Text)),
            ("x.htm", Some(Format::Html)),
            ("x.HTML", Some(Format::Html)),
            ("x.pdf", Some(Format::Pdf)),
            ("x.json", Some(Format::Json)),
            ("x.ndjson", Some(Format::Jsonl)),
            ("x.jsonl", Some(Format::Jsonl)),
            ("x.csv", None),
            ("Makefile", None),
        ];
        for (path, expected) in cases {
            assert_eq!(Format::from_path(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn formats_from_content_types_and_urls() {
        let cases = [
            (
                Some("text/html; charset=utf-8"),
                "https://x.org/",
                Some(Format::Html),
            ),
            (
                Some("application/pdf"),
                "https://x.org/get?id=1",
                Some(Format::Pdf),
            ),
            (
                Some("text/plain"),
                "https://x.org/README.md",
                Some(Format::Markdown),
            ),
            (
                Some("text/plain"),
                "https://x.org/notes",
                Some(Format::Text),
            ),
            (
                Some("application/json"),
                "https://x.org/d.jsonl",
                Some(Format::Jsonl),
            ),
            (
                Some("application/json"),
                "https://x.org/d",
                Some(Format::Json),
            ),
            (
                Some("application/x-ndjson"),
                "https://x.org/d",
                Some(Format::Jsonl),
            ),
            (
                Some("application/octet-stream"),
                "https://x.org/doc.pdf",
                Some(Format::Pdf),
            ),
            (Some("application/octet-stream"), "https://x.org/blob", None),
            (None, "https://x.org/a.html", Some(Format::Html)),
            (None, "https://x.org/", None),
        ];
        for (content_type, url, expected) in cases {
            assert_eq!(
                Format::detect(content_type, url),
                expected,
                "{content_type:?} {url}"
            );
        }
    }

    #[test]
    fn fallback_titles() {
        let cases = [
            ("/docs/guide.md", "guide"),
            ("upload:notes.txt", "notes"),
            ("https://example.com/a/page.html?x=1", "page"),
            ("https://example.com/", "example.com"),
            ("C:\\docs\\report.pdf", "report"),
        ];
        for (source, expected) in cases {
            assert_eq!(fallback_title(source), expected, "{source}");
        }
    }

    #[test]
    fn char_offsets_count_characters() {
        let text = "héllo wörld";
        let mut offsets = CharOffsets::new(text);
        assert_eq!(offsets.of(0), 0);
        assert_eq!(offsets.of(3), 2);
        assert_eq!(offsets.of(text.len()), 11);
        assert_eq!(offsets.of(1), 1, "going back restarts the count");
    }

    #[test]
    fn flattening_keeps_scalars_only() {
        let mut metadata = Map::new();
        let value = serde_json::json!({
            "tags": ["a", "b", 3],
            "author": { "name": "Ann", "links": [{ "x": 1 }] },
            "draft": false,
            "none": null
        });
        flatten_into(&mut metadata, "fm", &value, 0);
        assert_eq!(metadata["fm.tags"], "a, b, 3");
        assert_eq!(metadata["fm.author.name"], "Ann");
        assert_eq!(metadata["fm.draft"], false);
        assert!(!metadata.contains_key("fm.none"));
        assert!(!metadata.contains_key("fm.author.links"));
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(DEFAULT_MAX_BYTES), "50.0 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
