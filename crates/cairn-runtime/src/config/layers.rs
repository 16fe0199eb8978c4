//! The layers of the configuration and where each value came from: the file (with line numbers),
//! `CAIRN__SECTION__KEY` variables and flags, merged into a [`RawConfig`] with unknown keys refused.

use super::*;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: Option<usize> },
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "the default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The origin of every key that was set, by dotted key (`database.url`).
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Where `key` came from; for a key inside an array of tables (`models[1].api_key_env`), where
    /// the array came from.
    pub fn of(&self, key: &str) -> Origin {
        let array = key.split('[').next().unwrap_or(key);
        self.0
            .get(key)
            .or_else(|| self.0.get(array))
            .cloned()
            .unwrap_or(Origin::Default)
    }
}

/// A configuration error: where, which key, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// A syntax error, an unknown key or a wrong type in the file, with toml's own line and column.
    #[error(
        "config file {path}: {detail}\nsee cairn.example.toml for every key, its type and its default"
    )]
    File { path: PathBuf, detail: String },
    #[error("{origin}: `{key}`: {problem}; {fix}")]
    Value {
        origin: String,
        key: String,
        problem: String,
        fix: String,
    },
}

/// What the CLI hands to [`load`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The config file, if any.
    pub file: Option<PathBuf>,
    /// The process environment; only `CAIRN__…` variables are read.
    pub env: Vec<(String, String)>,
    /// Flag overrides: (flag as typed, dotted key, value).
    pub flags: Vec<(String, String, String)>,
}

pub(super) const ENV_PREFIX: &str = "CAIRN__";

/// Merges the layers into a [`RawConfig`], rejecting unknown keys and wrong types.
pub fn parse(sources: &Sources) -> Result<(RawConfig, Origins), ConfigError> {
    let mut merged = toml::Table::new();
    let mut origins = Origins::default();

    if let Some(path) = &sources.file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Deserializing the file alone first gives toml's errors with line, column and the offending key.
        toml::from_str::<RawConfig>(&text).map_err(|e| ConfigError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        merged = toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let document = toml_edit::Document::parse(text.as_str()).ok();
        for key in dotted_keys(&merged) {
            let line = document.as_ref().and_then(|d| line_of(d, &text, &key));
            origins.0.insert(
                key,
                Origin::File {
                    path: path.clone(),
                    line,
                },
            );
        }
    }

    let mut env: Vec<&(String, String)> = sources
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    let overrides =
        env.into_iter()
            .map(|(var, value)| {
                let key = var[ENV_PREFIX.len()..]
                    .split("__")
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
                    .join(".");
                (Origin::Env(var.clone()), key, value.clone())
            })
            .chain(sources.flags.iter().map(|(flag, key, value)| {
                (Origin::Flag(flag.clone()), key.clone(), value.clone())
            }));
    for (origin, key, value) in overrides {
        insert(&mut merged, &key, literal(&value)).map_err(|problem| ConfigError::Value {
            origin: origin.to_string(),
            key: key.clone(),
            problem,
            fix: "use CAIRN__SECTION__KEY for keys inside a section, e.g. CAIRN__DATABASE__URL"
                .into(),
        })?;
        // Checking after each layer pins a bad key or type on the variable or flag that brought it.
        merged
            .clone()
            .try_into::<RawConfig>()
            .map_err(|e| ConfigError::Value {
                origin: origin.to_string(),
                key: key.clone(),
                problem: e.message().to_owned(),
                fix: "see cairn.example.toml for every key, its type and its default".into(),
            })?;
        origins.0.insert(key, origin);
    }

    let raw = merged
        .try_into::<RawConfig>()
        .map_err(|e| ConfigError::Value {
            origin: "configuration".into(),
            key: String::new(),
            problem: e.message().to_owned(),
            fix: "see cairn.example.toml".into(),
        })?;
    Ok((raw, origins))
}

/// Reads an override: a TOML literal (number, boolean, array, quoted string) or else a bare string.
pub(super) fn literal(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

pub(super) fn insert(
    table: &mut toml::Table,
    dotted: &str,
    value: toml::Value,
) -> Result<(), String> {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts
        .pop()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "empty key".to_owned())?;
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is a value, not a section"))?;
    }
    current.insert(last.to_owned(), value);
    Ok(())
}

pub(super) fn dotted_keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => {
                keys.extend(dotted_keys(inner).into_iter().map(|k| format!("{key}.{k}")))
            }
            _ => keys.push(key.clone()),
        }
    }
    keys
}

pub(super) fn line_of(
    document: &toml_edit::Document<&str>,
    text: &str,
    dotted: &str,
) -> Option<usize> {
    let mut item = document.as_item();
    for part in dotted.split('.') {
        item = item.get(part)?;
    }
    let start = item.span()?.start;
    Some(text[..start].matches('\n').count() + 1)
}

/// The secret in environment variable `var`, which config key `key` names; an unset or empty
/// variable is an error that says so.
pub(super) fn env_secret(
    env: &[(String, String)],
    var: &str,
    key: &str,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<SecretString, ConfigError> {
    match env.iter().find(|(k, _)| k == var) {
        Some((_, value)) if !value.is_empty() => Ok(SecretString::from(value.clone())),
        _ => Err(bad(
            key,
            format!("environment variable {var} is not set"),
            "export it, or name another variable",
        )),
    }
}
