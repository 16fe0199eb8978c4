//! Integration tests of the loaders: real files in temporary directories, PDFs written with lopdf,
//! and a local HTTP server on 127.0.0.1 for fetching.

mod discover;
mod errors;
mod fetch;
mod formats;
mod pdf;

use std::path::{Path, PathBuf};

use cairn_loaders::{LoadOptions, LoadedDocument};

/// Every heading starts a line, and that line holds the heading's title (for Markdown and HTML)
/// or the page's text starts there (for PDF, checked by the PDF tests).
pub fn check_heading_lines(document: &LoadedDocument) {
    let chars: Vec<char> = document.text.chars().collect();
    let mut previous = 0;
    for heading in &document.headings {
        assert!(
            heading.char_offset >= previous,
            "headings out of order: {:?}",
            document.headings
        );
        previous = heading.char_offset;
        assert!(
            heading.char_offset <= chars.len(),
            "{heading:?} is past the end"
        );
        assert!(
            heading.char_offset == 0 || chars[heading.char_offset - 1] == '\n',
            "{heading:?} does not start a line in {:?}",
            document.text
        );
    }
}

/// The line of `document.text` that starts at a heading.
pub fn line_at(document: &LoadedDocument, char_offset: usize) -> String {
    document
        .text
        .chars()
        .skip(char_offset)
        .take_while(|c| *c != '\n')
        .collect()
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(&path, content).expect("write file");
    path
}

/// Loads one file that must give exactly one document.
pub fn load_one(path: &Path) -> LoadedDocument {
    let mut documents = cairn_loaders::load_file(path, &LoadOptions::default()).expect("loads");
    assert_eq!(documents.len(), 1);
    documents.remove(0)
}
