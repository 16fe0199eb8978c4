//! PDFs written with lopdf: pages and text, title, encryption, corruption, no text layer.

use cairn_loaders::{Format, LoadOptions, load_bytes};
use lopdf::content::{Content, Operation};
use lopdf::{
    Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream, StringFormat,
    dictionary,
};

use crate::{check_heading_lines, write};

/// A PDF with one page per entry, each page showing its lines in Courier, and an optional title.
fn pdf(pages: &[&[&str]], title: Option<&str>) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for lines in pages {
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 14.into()]),
            Operation::new("Td", vec![72.into(), 720.into()]),
        ];
        for (index, line) in lines.iter().enumerate() {
            if index > 0 {
                operations.push(Operation::new("Td", vec![0.into(), (-20).into()]));
            }
            operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("encode"),
        ));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = i64::try_from(kids.len()).expect("count");
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    if let Some(title) = title {
        let info_id = doc.add_object(dictionary! {
            "Title" => Object::String(title.as_bytes().to_vec(), StringFormat::Literal),
            "Author" => Object::string_literal("Ann Author"),
        });
        doc.trailer.set("Info", info_id);
    }
    // Encryption needs a file identifier.
    doc.trailer.set(
        "ID",
        vec![
            Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal),
            Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal),
        ],
    );
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save");
    bytes
}

fn encrypted(doc: Document, user_password: &str) -> Vec<u8> {
    let mut doc = doc;
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: Permissions::all(),
    })
    .expect("encryption state");
    doc.encrypt(&state).expect("encrypt");
    save(doc)
}

#[test]
fn two_pages_give_text_and_one_heading_per_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = save(pdf(
        &[
            &["Hello from page one", "Second line"],
            &["Page two says goodbye"],
        ],
        Some("The Report"),
    ));
    let path = write(dir.path(), "report.pdf", &bytes);
    let documents = cairn_loaders::load_file(&path, &LoadOptions::default()).expect("loads");
    let document = &documents[0];

    assert_eq!(document.format, Format::Pdf);
    assert_eq!(document.title, "The Report");
    assert_eq!(document.metadata["pages"], 2);
    assert_eq!(document.metadata["format"], "pdf");
    assert_eq!(document.metadata["author"], "Ann Author");
    assert!(
        document.text.contains("Hello from page one"),
        "{:?}",
        document.text
    );
    assert!(document.text.contains("Second line"), "{:?}", document.text);
    assert!(
        document.text.contains("Page two says goodbye"),
        "{:?}",
        document.text
    );

    let titles: Vec<(&str, u8)> = document
        .headings
        .iter()
        .map(|h| (h.title.as_str(), h.level))
        .collect();
    assert_eq!(titles, [("Page 1", 1), ("Page 2", 1)]);
    check_heading_lines(document);
    let chars: Vec<char> = document.text.chars().collect();
    let page_two: String = chars[document.headings[1].char_offset..].iter().collect();
    assert!(
        page_two.starts_with("Page two says goodbye"),
        "{page_two:?}"
    );
    let page_one: String = chars[..document.headings[1].char_offset].iter().collect();
    assert!(page_one.starts_with("Hello from page one"), "{page_one:?}");
    assert!(
        page_one.ends_with("\n\n"),
        "pages are separated by a blank line: {page_one:?}"
    );
}

#[test]
fn untitled_pdfs_take_the_file_stem() {
    let bytes = save(pdf(&[&["Some text"]], None));
    let documents = load_bytes(
        "upload:annual-report.pdf",
        &bytes,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect("loads");
    assert_eq!(documents[0].title, "annual-report");
}

#[test]
fn a_pdf_with_a_user_password_is_refused_with_a_hint() {
    let bytes = encrypted(pdf(&[&["Secret text"]], None), "user-secret");
    let error = load_bytes(
        "upload:secret.pdf",
        &bytes,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect_err("encrypted");
    assert_eq!(error.source, "upload:secret.pdf");
    assert!(error.reason.contains("is encrypted"), "{error}");
    assert!(error.reason.contains("qpdf --decrypt"), "{error}");
}

#[test]
fn a_pdf_encrypted_with_an_empty_user_password_is_read() {
    let bytes = encrypted(pdf(&[&["Readable by anyone"]], None), "");
    let documents = load_bytes(
        "upload:open.pdf",
        &bytes,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect("loads");
    assert!(
        documents[0].text.contains("Readable by anyone"),
        "{:?}",
        documents[0].text
    );
}

#[test]
fn corrupt_pdfs_are_reported() {
    for bytes in [
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf at all\n%%EOF"
            .to_vec(),
        b"%PDF-1.4\n\xff\xfe garbage garbage".to_vec(),
    ] {
        let error = load_bytes(
            "upload:broken.pdf",
            &bytes,
            Format::Pdf,
            &LoadOptions::default(),
        )
        .expect_err("corrupt");
        assert_eq!(error.source, "upload:broken.pdf");
        assert!(error.reason.contains("corrupt"), "{error}");
    }
    let whole = save(pdf(&[&["Some text"]], None));
    let truncated = &whole[..whole.len() / 3];
    let error = load_bytes(
        "upload:cut.pdf",
        truncated,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect_err("truncated");
    assert!(error.reason.contains("corrupt"), "{error}");
}

#[test]
fn a_pdf_without_a_text_layer_says_to_ocr_it() {
    let bytes = save(pdf(&[&[], &[]], None));
    let error = load_bytes(
        "upload:scan.pdf",
        &bytes,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect_err("no text");
    assert!(error.reason.contains("no extractable text"), "{error}");
    assert!(error.reason.contains("OCR"), "{error}");
}

#[test]
fn a_page_that_makes_the_parser_panic_is_contained() {
    // A page without a MediaBox anywhere up its tree makes pdf-extract panic (`expect("MediaBox")`).
    let mut doc = pdf(&[&["Fine text"]], None);
    let pages_id = doc
        .catalog()
        .expect("catalog")
        .get(b"Pages")
        .expect("pages")
        .as_reference()
        .expect("ref");
    doc.get_dictionary_mut(pages_id)
        .expect("pages dict")
        .remove(b"MediaBox");
    let bytes = save(doc);
    let error = load_bytes(
        "upload:panics.pdf",
        &bytes,
        Format::Pdf,
        &LoadOptions::default(),
    )
    .expect_err("panics");
    assert!(error.reason.contains("corrupt"), "{error}");
    assert!(error.reason.contains("MediaBox"), "{error}");
}

/// A Flate stream of zeros expands about 1,000×: past the limit, the file is refused before the
/// PDF library inflates anything; the same file within the limit loads.
#[test]
fn a_decompression_bomb_is_refused_before_it_is_parsed() {
    let mut doc = pdf(&[&["Quarterly numbers"]], None);
    let mut bomb = Stream::new(dictionary! {}, vec![0u8; 8 << 20]);
    bomb.compress().expect("compress");
    let compressed = bomb.content.len();
    doc.add_object(bomb);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save");
    assert!(bytes.len() < compressed + 4096, "the file stays small");

    let tight = LoadOptions {
        max_pdf_expanded_bytes: 4 << 20,
        ..LoadOptions::default()
    };
    let error = load_bytes("bomb.pdf", &bytes, Format::Pdf, &tight).expect_err("refused");
    assert!(
        error.reason.contains("expands to more than 4.0 MiB")
            && error.reason.contains("max_pdf_expanded_bytes"),
        "{error}"
    );
    let documents =
        load_bytes("bomb.pdf", &bytes, Format::Pdf, &LoadOptions::default()).expect("within");
    assert!(documents[0].text.contains("Quarterly numbers"));
}
