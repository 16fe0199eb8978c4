//! Prompt errors. Each says which prompt (and version), where (line and column), what is wrong, and
//! what the prompt declares, so the fix is obvious from the message alone.

use cairn_core::CatalogError;

/// Where in a prompt something is: a file being pushed, or a stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file; lines count from the top of the file.
    File {
        path: String,
        line: usize,
        column: usize,
    },
    /// A stored version; lines count from the top of its template body.
    Version {
        name: String,
        version: i64,
        line: usize,
        column: usize,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File { path, line, column } => {
                write!(f, "{path} line {line}, column {column}")
            }
            Location::Version {
                name,
                version,
                line,
                column,
            } => {
                write!(
                    f,
                    "prompt `{name}` v{version}, template line {line}, column {column}"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    /// The file's structure is wrong: front matter, role markers.
    #[error("{origin}: {message}")]
    Format { origin: String, message: String },
    #[error("{location}: template syntax error: {message}")]
    Syntax { location: Location, message: String },
    #[error(
        "{location}: undefined variable `{variable}`; declared variables: {}",
        list(declared)
    )]
    UndeclaredVariable {
        location: Location,
        variable: String,
        declared: Vec<String>,
    },
    #[error("{prompt}: invalid variables: {}; declared variables: {}", problems.join("; "), list(declared))]
    InvalidVariables {
        prompt: String,
        problems: Vec<String>,
        declared: Vec<String>,
    },
    #[error("{location}: {message}; declared variables: {}", list(declared))]
    Render {
        location: Location,
        message: String,
        declared: Vec<String>,
    },
    #[error(
        "{prompt}: rendering stopped after {limit} bytes of output; the template renders too much (loop bounds, repeated strings?)"
    )]
    OutputTooLarge { prompt: String, limit: usize },
    #[error(
        "{prompt}: rendering used up its fuel ({fuel} instructions); the template loops too much"
    )]
    OutOfFuel { prompt: String, fuel: u64 },
    #[error("{0}")]
    NotFound(String),
    /// The label is eval-gated and the move names no run, or a run that does not vouch for it.
    #[error("{0}")]
    Gated(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
