//! `[database]`: the catalog's database, resolved into SQLite under the data directory or a
//! PostgreSQL URL held as a secret.

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// Empty: SQLite under `data_dir`. Otherwise `sqlite://PATH` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: String::new(),
            max_connections: 16,
            connect_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    Sqlite {
        path: PathBuf,
        max_connections: u32,
    },
    Postgres {
        url: SecretString,
        max_connections: u32,
        connect_timeout: Duration,
        migrate_on_start: bool,
    },
}

impl DatabaseConfig {
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite { .. } => "sqlite",
            DatabaseConfig::Postgres { .. } => "postgres",
        }
    }

    /// Where the catalog lives, safe to print: the password of a PostgreSQL URL is masked.
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path, .. } => format!("SQLite at {}", path.display()),
            DatabaseConfig::Postgres { url, .. } => {
                format!("PostgreSQL at {}", redact_url(url.expose_secret()))
            }
        }
    }
}

pub(super) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

pub(super) fn database_config(
    raw: &RawConfig,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<DatabaseConfig, ConfigError> {
    const FIX: &str = "use postgres://USER:PASSWORD@HOST:5432/DATABASE, sqlite://PATH/TO/catalog.db, or leave it empty for SQLite under data_dir";
    let url = raw.database.url.trim();
    let max_connections = raw.database.max_connections;
    if url.is_empty() {
        return Ok(DatabaseConfig::Sqlite {
            path: raw.data_dir.join("catalog.db"),
            max_connections,
        });
    }
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        bad(
            "database.url",
            format!("`{}` is not a URL", redact_url_lossy(url)),
            FIX,
        )
    })?;
    match scheme {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(bad("database.url", "an SQLite URL needs a file path (an in-memory catalog would lose everything on exit)".into(), FIX));
            }
            Ok(DatabaseConfig::Sqlite {
                path: PathBuf::from(path),
                max_connections,
            })
        }
        "postgres" | "postgresql" => {
            let parsed = url::Url::parse(url).map_err(|e| {
                bad(
                    "database.url",
                    format!("`{}` is not a valid URL ({e})", redact_url_lossy(url)),
                    FIX,
                )
            })?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(bad(
                    "database.url",
                    "the PostgreSQL URL names no host".into(),
                    FIX,
                ));
            }
            Ok(DatabaseConfig::Postgres {
                url: SecretString::from(url.to_owned()),
                max_connections,
                connect_timeout: Duration::from_secs(raw.database.connect_timeout_secs.max(1)),
                migrate_on_start: raw.database.migrate_on_start,
            })
        }
        other => Err(bad(
            "database.url",
            format!("the `{other}` scheme is not supported"),
            FIX,
        )),
    }
}

/// Masks what looks like a password in a URL that may not parse.
pub(super) fn redact_url_lossy(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
