//! Discovery: hidden files, .gitignore/.ignore outside a git repository, include/exclude globs.

use std::path::{Path, PathBuf};

use cairn_loaders::{DiscoverOptions, discover};

use crate::write;

/// A tree with every case in it; returns the temporary directory.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for name in [
        "a.md",
        "b.txt",
        "c.html",
        "d.pdf",
        "e.json",
        "f.JSONL",
        "notes.csv",
        ".hidden.md",
        ".hiddendir/x.md",
        "ignored.md",
        "build/out.md",
        "sub/f.md",
        "sub/secret.md",
        "sub/deep/g.rst",
        "drafts/h.md",
    ] {
        write(root, name, "content");
    }
    write(root, ".gitignore", "ignored.md\nbuild/\n");
    write(root, "sub/.ignore", "secret.md\n");
    dir
}

fn relative(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let root = std::fs::canonicalize(root).expect("canonical root");
    files
        .iter()
        .map(|f| {
            assert!(f.is_absolute(), "{f:?}");
            f.strip_prefix(&root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

fn check(options: &DiscoverOptions, expected: &[&str]) {
    let dir = tree();
    let files = discover(dir.path(), options).expect("discovers");
    assert_eq!(relative(dir.path(), &files), expected, "{options:?}");
}

#[test]
fn default_takes_supported_files_and_skips_hidden_and_ignored_ones() {
    check(
        &DiscoverOptions::default(),
        &[
            "a.md",
            "b.txt",
            "c.html",
            "d.pdf",
            "drafts/h.md",
            "e.json",
            "f.JSONL",
            "sub/deep/g.rst",
            "sub/f.md",
        ],
    );
}

#[test]
fn include_globs_select_files_at_any_depth() {
    check(
        &DiscoverOptions {
            include: vec!["*.md".into()],
            exclude: vec![],
        },
        &["a.md", "drafts/h.md", "sub/f.md"],
    );
    check(
        &DiscoverOptions {
            include: vec!["sub/**".into(), "*.csv".into()],
            exclude: vec![],
        },
        &["notes.csv", "sub/deep/g.rst", "sub/f.md"],
    );
}

#[test]
fn exclude_globs_drop_files_and_whole_directories() {
    check(
        &DiscoverOptions {
            include: vec![],
            exclude: vec!["drafts".into(), "*.txt".into(), "sub/deep".into()],
        },
        &["a.md", "c.html", "d.pdf", "e.json", "f.JSONL", "sub/f.md"],
    );
}

#[test]
fn a_file_is_itself_and_bad_input_is_an_error() {
    let dir = tree();
    let file = dir.path().join("notes.csv");
    let files = discover(&file, &DiscoverOptions::default()).expect("a file");
    assert_eq!(files, [std::fs::canonicalize(&file).expect("canonical")]);

    let missing = dir.path().join("missing");
    let error = discover(&missing, &DiscoverOptions::default()).expect_err("missing");
    assert!(error.reason.contains("does not exist"), "{error}");

    let error = discover(
        dir.path(),
        &DiscoverOptions {
            include: vec!["docs/[".into()],
            exclude: vec![],
        },
    )
    .expect_err("bad glob");
    assert_eq!(error.source, "include glob `docs/[`");
    assert!(error.reason.contains("not a valid glob"), "{error}");
}

#[test]
fn a_hidden_root_given_explicitly_is_walked() {
    let dir = tree();
    let files =
        discover(&dir.path().join(".hiddendir"), &DiscoverOptions::default()).expect("walks");
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with(".hiddendir/x.md"), "{files:?}");
}
