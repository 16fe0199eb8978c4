//! Bad input: each case gives a `DocumentError` that names the document and says what to do.

use cairn_loaders::{DocumentError, Format, JsonOptions, LoadOptions, load_bytes, load_file};

use crate::write;

fn file_error(name: &str, content: &[u8], options: &LoadOptions) -> (String, DocumentError) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), name, content);
    let source = std::fs::canonicalize(&path)
        .expect("canonical")
        .display()
        .to_string();
    let error = load_file(&path, options).expect_err("must fail");
    (source, error)
}

fn bytes_error(content: &[u8], format: Format) -> DocumentError {
    load_bytes("upload:bad", content, format, &LoadOptions::default()).expect_err("must fail")
}

#[test]
fn empty_and_whitespace_files() {
    for (name, content) in [
        ("a.md", &b""[..]),
        ("b.txt", &b"  \n\r\n\t "[..]),
        ("c.html", &b"\n"[..]),
        ("d.json", &b""[..]),
        ("e.pdf", &b""[..]),
    ] {
        let (source, error) = file_error(name, content, &LoadOptions::default());
        assert_eq!(error.source, source);
        assert!(error.reason.contains("is empty"), "{name}: {error}");
    }
}

#[test]
fn binary_files() {
    let (source, error) = file_error(
        "image.md",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        &LoadOptions::default(),
    );
    assert_eq!(error.source, source);
    assert!(error.reason.contains("looks binary"), "{error}");
    let noise: Vec<u8> = (1u32..5000)
        .map(|i| u8::try_from((i * 7919) % 255 + 1).expect("byte"))
        .collect();
    let error = bytes_error(&noise, Format::Text);
    assert!(error.reason.contains("looks binary"), "{error}");
}

#[test]
fn invalid_utf8_names_the_byte_offset() {
    let (_, error) = file_error(
        "latin1.txt",
        b"Men\xFC of the caf\xE9, written in Latin-1 long ago",
        &LoadOptions::default(),
    );
    assert!(error.reason.contains("not valid UTF-8"), "{error}");
    assert!(error.reason.contains("offset 3"), "{error}");
    assert!(error.reason.contains("convert it to UTF-8"), "{error}");
}

#[test]
fn files_over_the_limit() {
    let options = LoadOptions {
        max_bytes: 1024,
        ..LoadOptions::default()
    };
    let (_, error) = file_error("big.txt", &[b'a'; 4096], &options);
    assert!(error.reason.contains("4.0 KiB (4096 bytes)"), "{error}");
    assert!(error.reason.contains("1.0 KiB (1024 bytes)"), "{error}");
    assert!(
        error.reason.contains("[ingest] max_document_bytes"),
        "{error}"
    );
    let error = load_bytes("upload:big.md", &[b'a'; 2000], Format::Markdown, &options)
        .expect_err("too big");
    assert!(error.reason.contains("2000 bytes"), "{error}");
}

#[test]
fn malformed_json_gives_line_and_column() {
    let error = bytes_error(b"{\n  \"text\": \"a\",\n  \"oops\" 1\n}", Format::Json);
    assert!(
        error.reason.contains("not valid JSON at line 3, column 10"),
        "{error}"
    );
    let error = bytes_error(b"{\"text\": \"fine\"}\n{\"text\": broken}\n", Format::Jsonl);
    assert!(
        error
            .reason
            .contains("line 2 is not valid JSON at column 10"),
        "{error}"
    );
    let error = bytes_error(b"\"just a string\"", Format::Json);
    assert!(error.reason.contains("JSON string"), "{error}");
    let error = bytes_error(b"[]", Format::Json);
    assert!(error.reason.contains("empty JSON array"), "{error}");
}

#[test]
fn json_records_without_text_name_the_fields_tried() {
    let error = bytes_error(
        br#"[{"text": "ok"}, {"title": "no text", "text": ""}]"#,
        Format::Json,
    );
    assert_eq!(error.source, "upload:bad#1");
    assert!(
        error.reason.contains("`text`, `content`, `body`"),
        "{error}"
    );
    let error = bytes_error(br#"[{"text": "ok"}, 42]"#, Format::Json);
    assert_eq!(error.source, "upload:bad#1");
    assert!(error.reason.contains("not an object"), "{error}");
}

#[test]
fn json_ids_must_exist_and_be_unique() {
    let options = LoadOptions {
        json: JsonOptions {
            id_field: Some("id".into()),
            ..JsonOptions::default()
        },
        ..LoadOptions::default()
    };
    let error = load_bytes(
        "upload:d.json",
        br#"[{"id": 1, "text": "a"}, {"id": 1, "text": "b"}]"#,
        Format::Json,
        &options,
    )
    .expect_err("duplicate");
    assert!(
        error
            .reason
            .contains("records 0 and 1 have the same id `1`"),
        "{error}"
    );
    let error = load_bytes(
        "upload:d.json",
        br#"[{"text": "a"}]"#,
        Format::Json,
        &options,
    )
    .expect_err("no id");
    assert_eq!(error.source, "upload:d.json#0");
    assert!(error.reason.contains("no id field `id`"), "{error}");
}

#[test]
fn unknown_extensions_list_the_supported_ones() {
    let (source, error) = file_error("table.csv", b"a,b\n1,2\n", &LoadOptions::default());
    assert_eq!(error.source, source);
    assert!(
        error.reason.contains("unsupported file type (`.csv`)"),
        "{error}"
    );
    assert!(error.reason.contains(".md, .markdown"), "{error}");
    assert!(error.reason.contains(".jsonl"), "{error}");
}

#[test]
fn missing_files_and_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.md");
    let error = load_file(&missing, &LoadOptions::default()).expect_err("missing");
    assert_eq!(error.source, missing.display().to_string());
    assert!(error.reason.contains("does not exist"), "{error}");
    let folder = dir.path().join("folder.md");
    std::fs::create_dir(&folder).expect("mkdir");
    let error = load_file(&folder, &LoadOptions::default()).expect_err("directory");
    assert!(error.reason.contains("not a regular file"), "{error}");
}

#[test]
fn errors_display_source_and_reason() {
    let error = DocumentError::new("/docs/a.md", "is empty");
    assert_eq!(error.to_string(), "/docs/a.md: is empty");
}

#[test]
fn html_without_content() {
    let error = bytes_error(
        b"<html><body><nav>menu</nav><script>x()</script></body></html>",
        Format::Html,
    );
    assert!(error.reason.contains("no text content"), "{error}");
}
