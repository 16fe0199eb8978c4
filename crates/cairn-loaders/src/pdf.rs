//! PDF: the text layer, page by page, through `pdf-extract` (on `lopdf`), with one heading per page.
//! It does no OCR and no layout analysis beyond what `pdf-extract` does.
//!
//! `pdf-extract` panics on some malformed input (it indexes and unwraps freely). Each call into it
//! runs under [`std::panic::catch_unwind`], so a bad file becomes a [`DocumentError`] instead of
//! taking the ingest down; a page that fails alone is left empty and named in the metadata. (A
//! stack overflow from pathologically nested objects is an abort, which no library can catch.)

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::{Dictionary, Document, Object};
use pdf_extract::PlainTextOutput;
use serde_json::{Map, Value};

use crate::{CharOffsets, DocumentError, Format, Heading, LoadedDocument, fallback_title};

/// Where the `%PDF-` header may start: some producers put junk before it, which readers accept.
const HEADER_WINDOW: usize = 1024;

/// Loads a PDF's text layer.
pub(crate) fn load(
    source: &str,
    bytes: &[u8],
    max_expanded: u64,
) -> Result<LoadedDocument, DocumentError> {
    let fail = |reason: String| DocumentError::new(source, reason);
    if bytes.is_empty() || bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(crate::text::empty(source));
    }
    let window = &bytes[..bytes.len().min(HEADER_WINDOW)];
    if !window.windows(5).any(|w| w == b"%PDF-") {
        return Err(fail(
            "is not a PDF (no %PDF- header); check the file type or its extension".to_owned(),
        ));
    }

    crate::pdf_bomb::check(bytes, max_expanded).map_err(fail)?;
    let loaded = catch_unwind(|| Document::load_mem(bytes))
        .map_err(|panic| fail(corrupt(&panic_message(&panic))))?;
    let mut document = loaded.map_err(|error| fail(load_error(&error)))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(fail(encrypted()));
    }

    let info = info_dictionary(&document);
    let pages: BTreeMap<u32, _> = document.get_pages();
    if pages.is_empty() {
        return Err(fail(
            "has no pages; the file may be truncated or corrupt".to_owned(),
        ));
    }

    let mut text = String::new();
    let mut page_starts = Vec::with_capacity(pages.len());
    let mut failed_pages = Vec::new();
    let mut first_failure: Option<String> = None;
    for &page_number in pages.keys() {
        let extracted = catch_unwind(AssertUnwindSafe(|| {
            let mut page_text = String::new();
            let result = pdf_extract::output_doc_page(
                &document,
                &mut PlainTextOutput::new(&mut page_text),
                page_number,
            );
            result.map(|()| page_text)
        }));
        let page_text = match extracted {
            Ok(Ok(page_text)) => tidy(&page_text),
            Ok(Err(error)) => {
                let detail = error.to_string();
                tracing::warn!(source, page_number, %detail, "PDF page could not be read");
                first_failure.get_or_insert(detail);
                failed_pages.push(page_number);
                String::new()
            }
            Err(panic) => {
                let detail = panic_message(&panic);
                tracing::warn!(source, page_number, %detail, "PDF page could not be read");
                first_failure.get_or_insert(detail);
                failed_pages.push(page_number);
                String::new()
            }
        };
        if !text.is_empty() && !page_text.is_empty() {
            text.push_str("\n\n");
        }
        page_starts.push((text.len(), page_number));
        text.push_str(&page_text);
    }

    if failed_pages.len() == pages.len() {
        let detail = first_failure.unwrap_or_default();
        return Err(fail(corrupt(&format!("no page could be read: {detail}"))));
    }
    if text.trim().is_empty() {
        return Err(fail(
            "has no extractable text (it may be scanned images); OCR it first (e.g. ocrmypdf) and ingest again"
                .to_owned(),
        ));
    }

    let mut offsets = CharOffsets::new(&text);
    let headings = page_starts
        .into_iter()
        .map(|(byte, page_number)| Heading {
            char_offset: offsets.of(byte),
            level: 1,
            title: format!("Page {page_number}"),
        })
        .collect();

    let mut metadata = Map::new();
    metadata.insert("format".into(), Value::from(Format::Pdf.as_str()));
    metadata.insert("pages".into(), Value::from(pages.len()));
    if !failed_pages.is_empty() {
        let list: Vec<String> = failed_pages.iter().map(u32::to_string).collect();
        metadata.insert("unreadable_pages".into(), Value::from(list.join(", ")));
    }
    for (key, field) in [
        ("author", b"Author".as_slice()),
        ("subject", b"Subject"),
        ("keywords", b"Keywords"),
    ] {
        if let Some(value) = info_string(&document, info.as_ref(), field) {
            metadata.insert(key.into(), Value::from(value));
        }
    }
    let title =
        info_string(&document, info.as_ref(), b"Title").unwrap_or_else(|| fallback_title(source));

    Ok(LoadedDocument {
        source: source.to_owned(),
        title,
        text,
        format: Format::Pdf,
        headings,
        url: None,
        metadata,
    })
}

fn encrypted() -> String {
    "is encrypted; decrypt it (e.g. qpdf --decrypt --password=… in.pdf out.pdf) and ingest again"
        .to_owned()
}

fn corrupt(detail: &str) -> String {
    format!(
        "is corrupt or not a PDF Cairn can read ({detail}); re-export or repair it (e.g. qpdf in.pdf out.pdf) and ingest again"
    )
}

fn load_error(error: &lopdf::Error) -> String {
    match error {
        lopdf::Error::Decryption(_)
        | lopdf::Error::InvalidPassword
        | lopdf::Error::AlreadyEncrypted => encrypted(),
        other => corrupt(&other.to_string()),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .map_or_else(
            || "the PDF parser failed".to_owned(),
            |m| format!("the PDF parser failed: {m}"),
        )
}

/// The Info dictionary (title, author…), when the trailer has one.
fn info_dictionary(document: &Document) -> Option<Dictionary> {
    let info = document.trailer.get(b"Info").ok()?;
    let (_, info) = document.dereference(info).ok()?;
    info.as_dict().ok().cloned()
}

fn info_string(document: &Document, info: Option<&Dictionary>, key: &[u8]) -> Option<String> {
    let value = info?.get(key).ok()?;
    let (_, value): (_, &Object) = document.dereference(value).ok()?;
    let text = lopdf::decode_text_string(value).ok()?;
    let text = crate::markdown::collapse_whitespace(&text);
    (!text.is_empty()).then_some(text)
}

/// A page's text with trailing spaces on lines removed and runs of blank lines shortened to one.
fn tidy(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut blank_lines = 0usize;
    for line in page.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_shortens_blank_runs() {
        assert_eq!(tidy("\n\n  a  \nb\n\n\n\nc\n\n"), "  a\nb\n\nc");
    }

    #[test]
    fn not_a_pdf() {
        let error = load(
            "x.pdf",
            b"hello, I am text",
            crate::DEFAULT_MAX_PDF_EXPANDED_BYTES,
        )
        .expect_err("no header");
        assert!(error.reason.contains("is not a PDF"), "{error}");
    }
}
