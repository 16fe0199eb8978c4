//! Why a suite could not be loaded or run. Each message names the file (and line, where there is
//! one) and says how to fix it; all of them end a run with exit code 2.

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite file cannot be read or parsed, or holds an unknown key.
    #[error("{origin}: {message}")]
    File { origin: String, message: String },
    /// A dataset file cannot be read, or a case in it is malformed.
    #[error("{origin}: {message}")]
    Dataset { origin: String, message: String },
    /// The suite parses but cannot run as written: a metric needs a field the dataset lacks, a
    /// prompt variable is left unfilled, a gate names no metric.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// The target or a judge cannot be called at all (it does not exist, retrieval is down).
    #[error("suite `{suite}` cannot run: {message}")]
    Unusable { suite: String, message: String },
}
