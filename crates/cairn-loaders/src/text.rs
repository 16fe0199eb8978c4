//! Bytes to text: byte-order marks, UTF-16, binary detection, UTF-8 validation and emptiness; and
//! the plain-text loader. Nothing here knows any markup.

use serde_json::{Map, Value};

use crate::{DocumentError, Format, LoadedDocument, fallback_title};

/// How much of the start of a file the binary check looks at.
const SNIFF_BYTES: usize = 8 * 1024;

/// More than this share of control characters or invalid UTF-8 in the sniffed prefix means the
/// file is not text. Text in a legacy 8-bit encoding (Latin-1 prose) stays well below it, so it
/// gets the more useful "not valid UTF-8" message instead.
const MAX_SUSPICIOUS_SHARE: f64 = 0.3;

/// Decodes a text file: strips a UTF-8 byte-order mark, decodes UTF-16 with a byte-order mark,
/// refuses binary data, invalid UTF-8 and empty (whitespace-only) content.
pub(crate) fn decode(source: &str, bytes: &[u8]) -> Result<String, DocumentError> {
    if let Some(text) = decode_utf16(source, bytes)? {
        return non_empty(source, text);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty(source));
    }
    if let Some(why) = looks_binary(bytes) {
        return Err(DocumentError::new(
            source,
            format!(
                "looks binary ({why}); Cairn reads UTF-8 text, Markdown, HTML, JSON and PDF: check the file type"
            ),
        ));
    }
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => non_empty(source, text),
        Err(error) => Err(DocumentError::new(
            source,
            format!(
                "is not valid UTF-8 (invalid byte at offset {}); convert it to UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8`",
                error.utf8_error().valid_up_to()
            ),
        )),
    }
}

/// The error for an empty or whitespace-only document.
pub(crate) fn empty(source: &str) -> DocumentError {
    DocumentError::new(source, "is empty (no text, or only whitespace)")
}

fn non_empty(source: &str, text: String) -> Result<String, DocumentError> {
    if text.trim().is_empty() {
        Err(empty(source))
    } else {
        Ok(text)
    }
}

/// UTF-16 with a byte-order mark (what Windows tools write as "Unicode") is decoded rather than
/// refused: it is text, and its NUL bytes would otherwise make it look binary.
fn decode_utf16(source: &str, bytes: &[u8]) -> Result<Option<String>, DocumentError> {
    let (little_endian, body) = match bytes {
        [0xFF, 0xFE, rest @ ..] => (true, rest),
        [0xFE, 0xFF, rest @ ..] => (false, rest),
        _ => return Ok(None),
    };
    if body.len() % 2 != 0 {
        return Err(DocumentError::new(
            source,
            "starts with a UTF-16 byte-order mark but has an odd number of bytes; convert it to UTF-8",
        ));
    }
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if little_endian {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    let mut text = String::with_capacity(body.len() / 2);
    for (index, decoded) in char::decode_utf16(units).enumerate() {
        match decoded {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(DocumentError::new(
                    source,
                    format!(
                        "is not valid UTF-16 (unpaired surrogate at byte offset {}); convert it to UTF-8",
                        2 + index * 2
                    ),
                ));
            }
        }
    }
    Ok(Some(text))
}

/// Why the start of `bytes` does not look like text, if it does not.
fn looks_binary(bytes: &[u8]) -> Option<&'static str> {
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if sample.contains(&0) {
        return Some("it contains NUL bytes");
    }
    let mut suspicious = 0usize;
    let mut rest = sample;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                suspicious += count_controls(valid);
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                suspicious += count_controls(std::str::from_utf8(valid).unwrap_or_default());
                match error.error_len() {
                    Some(invalid) => {
                        suspicious += invalid;
                        rest = &after[invalid..];
                    }
                    // A character cut by the end of the sample is not evidence of anything.
                    None => break,
                }
            }
        }
    }
    // Both counts are at most 8 KiB: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let share = suspicious as f64 / sample.len().max(1) as f64;
    (share > MAX_SUSPICIOUS_SHARE).then_some("most of its first bytes are not text")
}

fn count_controls(text: &str) -> usize {
    text.chars()
        .filter(|&c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C' | '\x1B'))
        .count()
}

/// The charset an HTML page declares in its first KiB (`<meta charset=…>` or the http-equiv form).
pub(crate) fn meta_charset(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let label: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!label.is_empty()).then_some(label)
}

/// An HTML file that is not UTF-8 but declares its charset in a `<meta>` tag, converted to UTF-8;
/// anything else is returned as it is.
pub(crate) fn html_to_utf8(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if std::str::from_utf8(bytes).is_ok() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    match meta_charset(bytes).and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes())) {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            let (text, _, _) = encoding.decode(bytes);
            std::borrow::Cow::Owned(text.into_owned().into_bytes())
        }
        _ => std::borrow::Cow::Borrowed(bytes),
    }
}

/// A plain-text document: the text as it is, titled by its file name.
pub(crate) fn load(source: &str, text: String) -> LoadedDocument {
    let mut metadata = Map::new();
    metadata.insert("format".into(), Value::from(Format::Text.as_str()));
    LoadedDocument {
        source: source.to_owned(),
        title: fallback_title(source),
        text,
        format: Format::Text,
        headings: Vec::new(),
        url: None,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(bytes: &[u8]) -> String {
        match decode("f.txt", bytes) {
            Ok(text) => panic!("decoded {text:?}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn strips_the_utf8_bom_and_keeps_crlf() {
        assert_eq!(
            decode("f", b"\xEF\xBB\xBFa\r\nb").ok().as_deref(),
            Some("a\r\nb")
        );
    }

    #[test]
    fn decodes_utf16_with_a_bom() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("héllo".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode("f", &le).ok().as_deref(), Some("héllo"));
        let mut be = vec![0xFE, 0xFF];
        be.extend("ok".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode("f", &be).ok().as_deref(), Some("ok"));
    }

    #[test]
    fn refuses_bad_bytes_with_reasons() {
        assert!(reason(b"").contains("is empty"));
        assert!(reason(b" \n\t\r\n").contains("is empty"));
        assert!(reason(b"\xEF\xBB\xBF  ").contains("is empty"));
        assert!(reason(b"abc\0def").contains("looks binary"));
        let noise: Vec<u8> = (0u8..=255)
            .cycle()
            .skip(1)
            .take(4000)
            .filter(|b| *b != 0)
            .collect();
        assert!(reason(&noise).contains("looks binary"));
        let latin1 = b"caf\xE9 cr\xE8me br\xFBl\xE9e, a long enough sentence in Latin-1";
        let message = reason(latin1);
        assert!(message.contains("not valid UTF-8"), "{message}");
        assert!(message.contains("offset 3"), "{message}");
        assert!(message.contains("convert it to UTF-8"), "{message}");
    }

    #[test]
    fn html_declaring_a_legacy_charset_is_converted() {
        let html =
            b"<html><head><meta charset=\"windows-1252\"></head><body>na\xEFve</body></html>";
        let converted = html_to_utf8(html);
        assert!(
            std::str::from_utf8(&converted)
                .expect("utf-8")
                .contains("naïve")
        );
        assert_eq!(html_to_utf8(b"<p>plain</p>").as_ref(), b"<p>plain</p>");
    }

    #[test]
    fn a_character_cut_by_the_sniff_window_is_fine() {
        let mut text = "a".repeat(SNIFF_BYTES - 1);
        text.push('é');
        assert!(decode("f", text.as_bytes()).is_ok());
    }
}
