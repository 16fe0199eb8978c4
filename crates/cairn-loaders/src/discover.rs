//! Finding the files to ingest under a path, the way `git` and `ripgrep` would: hidden files and
//! directories skipped, `.gitignore`, `.ignore` and `.git/info/exclude` honoured (also outside a
//! git repository). It reads no file's content.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::WalkBuilder;

use crate::{DocumentError, Format};

/// Which files [`discover`] returns. Globs are matched against the path relative to the root
/// (`*.md` matches at any depth, `docs/**/*.md` under `docs`), with `/` as separator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// Files to take. Empty (the default): every file with a supported extension (see
    /// [`crate::EXTENSIONS`]). Non-empty: the files matching any of these globs, whatever their
    /// extension (a file whose format is unknown then fails to load, with a message).
    pub include: Vec<String>,
    /// Files and directories to leave out; a matching directory is not entered.
    pub exclude: Vec<String>,
}

/// The files to load under `root`, sorted, as absolute canonical paths: `root` itself when it is
/// a file (whatever its extension), else the files of the directory tree that the options select.
/// Entries that cannot be read (permissions, broken links) are skipped with a warning.
pub fn discover(root: &Path, options: &DiscoverOptions) -> Result<Vec<PathBuf>, DocumentError> {
    let shown = root.display().to_string();
    let root = std::fs::canonicalize(root).map_err(|e| crate::io_error(&shown, &e))?;
    if root.is_file() {
        return Ok(vec![root]);
    }
    if !root.is_dir() {
        return Err(DocumentError::new(
            root.display().to_string(),
            "is neither a file nor a directory",
        ));
    }
    let include = glob_set(&options.include, "include")?;
    let exclude = glob_set(&options.exclude, "exclude")?;

    let walk_root = root.clone();
    let excluded_dirs = exclude.clone();
    let walker = WalkBuilder::new(&root)
        .hidden(true)
        .ignore(true)
        .git_ignore(true)
        .git_exclude(true)
        // The user's global gitignore is about their editor, not about this corpus; leaving it
        // out keeps the result the same on every machine.
        .git_global(false)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && entry.depth() > 0 && matches(&excluded_dirs, &walk_root, entry.path()))
        })
        .build();

    let mut files = Vec::new();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(root = %root.display(), %error, "skipped an entry that cannot be read");
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let selected = match &include {
            Some(include) => matches_set(include, &root, path),
            None => Format::from_path(path).is_some(),
        };
        if !selected || matches(&exclude, &root, path) {
            continue;
        }
        match std::fs::canonicalize(path) {
            Ok(path) => files.push(path),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "skipped a file that cannot be read")
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn glob_set(globs: &[String], what: &str) -> Result<Option<GlobSet>, DocumentError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let parsed = Glob::new(glob).map_err(|error| {
            DocumentError::new(
                format!("{what} glob `{glob}`"),
                format!("is not a valid glob ({error}); e.g. `*.md` or `docs/**/*.html`"),
            )
        })?;
        builder.add(parsed);
    }
    builder.build().map(Some).map_err(|error| {
        DocumentError::new(
            format!("{what} globs"),
            format!("cannot be compiled ({error})"),
        )
    })
}

fn matches(set: &Option<GlobSet>, root: &Path, path: &Path) -> bool {
    set.as_ref().is_some_and(|set| matches_set(set, root, path))
}

fn matches_set(set: &GlobSet, root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    // Globs use `/` on every platform.
    let relative = relative.to_string_lossy().replace('\\', "/");
    set.is_match(&relative)
}
