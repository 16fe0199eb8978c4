//! Decompression bombs in PDFs: a Flate stream of zeros expands about 1,000×, and the PDF library
//! inflates object streams while it loads and content streams while text is extracted, with no
//! limit. An allocation that fails aborts the process, which `catch_unwind` cannot stop. So before
//! the library sees the file, every Flate stream in it is inflated here into a counter (nothing is
//! kept) and the file is refused when they expand past the limit, each or all together.
//!
//! Streams are found by their `stream` keyword and inflated from their first byte until the
//! compressed data ends, so neither a wrong `/Length` nor an `endstream` hidden inside the data
//! can shorten what is counted.

use std::io::Read;

use flate2::read::ZlibDecoder;

/// How far before a `stream` keyword its dictionary is looked for.
const DICTIONARY_WINDOW: usize = 4096;

/// Refuses the file when its Flate streams expand to more than `limit` bytes in total.
pub(crate) fn check(bytes: &[u8], limit: u64) -> Result<(), String> {
    let mut total: u64 = 0;
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], b"stream") {
        let keyword = at + found;
        at = keyword + b"stream".len();
        if keyword >= 3 && &bytes[keyword - 3..keyword] == b"end" {
            continue;
        }
        // The keyword is followed by CRLF or LF, then the data.
        let mut data = at;
        if bytes.get(data) == Some(&b'\r') {
            data += 1;
        }
        if bytes.get(data) != Some(&b'\n') {
            continue;
        }
        data += 1;
        if !flate_filtered(&bytes[keyword.saturating_sub(DICTIONARY_WINDOW)..keyword]) {
            continue;
        }
        let budget = limit.saturating_sub(total).saturating_add(1);
        total = total.saturating_add(inflated_size(&bytes[data..], budget));
        if total > limit {
            return Err(format!(
                "expands to more than {} when decompressed (a decompression bomb, or a file too large to index) and was not read; if it is genuine, raise [ingest] max_pdf_expanded_bytes",
                crate::human_size(limit)
            ));
        }
    }
    Ok(())
}

/// Whether the dictionary just before a `stream` keyword (after the last `obj`) names the Flate
/// filter (`/FlateDecode`, or `/Fl` in inline abbreviations).
fn flate_filtered(before: &[u8]) -> bool {
    let dictionary = match rfind(before, b"obj") {
        Some(start) => &before[start..],
        None => before,
    };
    find(dictionary, b"/FlateDecode").is_some() || find(dictionary, b"/Fl ").is_some()
}

/// Bytes the zlib data at the start of `data` inflates to, counting no further than `budget`. Data
/// that is not valid zlib counts what inflated before the error (the PDF library will refuse it).
fn inflated_size(data: &[u8], budget: u64) -> u64 {
    let mut decoder = ZlibDecoder::new(data);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut count: u64 = 0;
    while count < budget {
        match decoder.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => count += read as u64,
        }
    }
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).expect("compress");
        encoder.finish().expect("finish")
    }

    fn object(dictionary: &str, data: &[u8]) -> Vec<u8> {
        let mut object = format!("7 0 obj\n<< {dictionary} >>\nstream\r\n").into_bytes();
        object.extend_from_slice(data);
        object.extend_from_slice(b"\nendstream\nendobj\n");
        object
    }

    #[test]
    fn flate_streams_are_counted_together_and_others_are_not() {
        let zeros = zlib(&vec![0u8; 1 << 20]);
        let mut file = b"%PDF-1.5\n".to_vec();
        file.extend(object("/Length 5 /Filter /FlateDecode", &zeros));
        assert!(check(&file, 2 << 20).is_ok(), "1 MiB within 2 MiB");
        file.extend(object("/Filter [/FlateDecode /DCTDecode]", &zeros));
        file.extend(object("/Filter /FlateDecode", &zeros));
        let refused = check(&file, 2 << 20).expect_err("3 MiB over 2 MiB");
        assert!(refused.contains("more than 2.0 MiB"), "{refused}");
        // A stream without the Flate filter is not inflated, however it looks.
        let mut plain = b"%PDF-1.5\n".to_vec();
        plain.extend(object("/Length 10", &zeros));
        assert!(check(&plain, 1024).is_ok());
    }

    #[test]
    fn a_hidden_endstream_or_a_wrong_length_does_not_shorten_the_count() {
        // Stored (uncompressed) deflate blocks can carry any bytes, `endstream` included.
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::none());
        encoder.write_all(b"endstream").expect("write");
        encoder.write_all(&vec![0u8; 1 << 20]).expect("write");
        let data = encoder.finish().expect("finish");
        let mut file = b"%PDF-1.5\n".to_vec();
        file.extend(object("/Length 3 /Filter /FlateDecode", &data));
        assert!(check(&file, 512 << 10).is_err());
    }
}
