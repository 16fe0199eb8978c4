//! `cairn prompt …`: the prompt registry from the command line. Reads files, calls the registry,
//! prints results; the rules live in `cairn-prompts`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_prompts::{PromptFile, Selector};
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum PromptCommand {
    /// Validate prompt files and publish the changed ones as new versions (unchanged ones are no-ops).
    Push {
        /// Files or directories of `*.prompt` files.
        #[arg(default_value = "prompts")]
        paths: Vec<PathBuf>,
        /// Recorded as the versions' author (default: $USER).
        #[arg(long)]
        author: Option<String>,
        /// Why: recorded with each new version.
        #[arg(long, short, default_value = "")]
        message: String,
    },
    /// List prompts with their latest version and labels.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one version as a prompt file: NAME, NAME@VERSION or NAME@LABEL.
    Show { reference: String },
    /// Show what changed between two versions or labels of a prompt.
    Diff {
        name: String,
        from: String,
        to: String,
    },
    /// Point a label (production, staging, …) at a version. An eval-gated label (`[[prompts.gates]]`)
    /// moves only when its suite passes on that version: the suite runs first, and the stored run
    /// is recorded with the move.
    Label {
        name: String,
        version: i64,
        label: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        author: Option<String>,
        /// Runs this suite file on the version first and moves the label only if it passes
        /// (a gated label runs its configured suite without this flag).
        #[arg(long, value_name = "SUITE_FILE", conflicts_with = "eval_run")]
        require_eval: Option<PathBuf>,
        /// Moves the label on the strength of a stored passing run of the suite on this version.
        #[arg(long, value_name = "RUN_ID")]
        eval_run: Option<uuid::Uuid>,
    },
    /// Move a label back to the version it pointed at before its last move.
    Rollback {
        name: String,
        label: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        author: Option<String>,
    },
    /// A prompt's versions and every label move.
    History {
        name: String,
        /// Print JSON: the versions and the label moves.
        #[arg(long)]
        json: bool,
    },
    /// Compare local files with the catalog: which are unpublished, and which labels lag behind.
    Status {
        #[arg(default_value = "prompts")]
        paths: Vec<PathBuf>,
        /// Fail (exit 1) when a file is not published as its prompt's latest version: a CI gate
        /// that prompt files and the registry agree.
        #[arg(long)]
        check: bool,
        /// Print JSON: each file with its matching and latest versions and its labels.
        #[arg(long)]
        json: bool,
    },
    /// Render a stored version with variables, as the model would receive it.
    Render {
        reference: String,
        /// Variables as a JSON object.
        #[arg(long, default_value = "{}")]
        vars: String,
        /// One variable, KEY=VALUE (VALUE is read as JSON when it parses, else as a string).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        var: Vec<String>,
    },
}

fn actor(author: Option<String>) -> String {
    author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned())
}

/// Every `*.prompt` file under the given files and directories, sorted.
fn prompt_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
            {
                let entry_path = entry?.path();
                if entry_path.extension().is_some_and(|ext| ext == "prompt") {
                    files.push(entry_path);
                }
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!(
                "{} does not exist; give prompt files or directories of *.prompt files",
                path.display()
            );
        }
    }
    files.sort();
    Ok(files)
}

fn read_prompt(path: &Path) -> Result<PromptFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(PromptFile::parse(&text, &path.display().to_string())?)
}

pub async fn run(
    config: &cairn_runtime::config::Config,
    open: &cairn_runtime::catalog::OpenCatalog,
    command: PromptCommand,
) -> Result<()> {
    let catalog_arc = open.as_dyn();
    let registry = cairn_runtime::catalog::prompt_registry(config, catalog_arc.clone());
    let catalog = &*catalog_arc;
    match command {
        PromptCommand::Push {
            paths,
            author,
            message,
        } => {
            let files = prompt_files(&paths)?;
            // Validate everything before publishing anything: a broken file stops the whole push.
            let mut parsed = Vec::new();
            let mut errors = Vec::new();
            for path in &files {
                match read_prompt(path)
                    .and_then(|file| registry.check(&file).map(|()| file).map_err(Into::into))
                {
                    Ok(file) => parsed.push(file),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            if !errors.is_empty() {
                bail!(
                    "nothing was published; fix these first:\n{}",
                    errors.join("\n")
                );
            }
            let author = actor(author);
            for file in parsed {
                let outcome = registry.publish(&file, &author, &message).await?;
                if outcome.created {
                    crate::audit::record(
                        catalog,
                        "prompt.publish",
                        &format!("{}@v{}", outcome.version.name, outcome.version.version),
                        serde_json::json!({"message": message}),
                    )
                    .await;
                }
                let verb = if outcome.created {
                    "published"
                } else {
                    "unchanged"
                };
                println!(
                    "{verb:<10} {}@v{}",
                    outcome.version.name, outcome.version.version
                );
            }
        }
        PromptCommand::List { json } => {
            let summaries = catalog.list_prompts().await?;
            if json {
                let mut listed = Vec::new();
                for summary in &summaries {
                    let labels: serde_json::Map<String, Value> = catalog
                        .list_prompt_labels(&summary.name)
                        .await?
                        .into_iter()
                        .map(|l| (l.label, Value::from(l.version)))
                        .collect();
                    listed.push(serde_json::json!({"name": summary.name, "latest_version": summary.latest_version, "labels": labels}));
                }
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(());
            }
            println!("{:<32} {:>7}  LABELS", "NAME", "LATEST");
            for summary in summaries {
                let labels: Vec<String> = catalog
                    .list_prompt_labels(&summary.name)
                    .await?
                    .into_iter()
                    .map(|l| format!("{}→v{}", l.label, l.version))
                    .collect();
                println!(
                    "{:<32} {:>7}  {}",
                    summary.name,
                    format!("v{}", summary.latest_version),
                    labels.join(", ")
                );
            }
        }
        PromptCommand::Show { reference } => {
            let (name, selector) = Selector::parse_reference(&reference);
            let version = registry.resolve(&name, &selector).await?;
            let spec = toml::to_string(&version.spec).unwrap_or_else(|_| version.spec.to_string());
            println!(
                "# {}@v{}  by {}  {}  {}",
                version.name,
                version.version,
                version.author,
                version.created_at.to_rfc3339(),
                version.message
            );
            print!("+++\n{spec}+++\n{}", version.template);
        }
        PromptCommand::Diff { name, from, to } => {
            print!(
                "{}",
                registry
                    .diff(&name, &Selector::parse(&from), &Selector::parse(&to))
                    .await?
            );
        }
        PromptCommand::Label {
            name,
            version,
            label,
            reason,
            author,
            require_eval,
            eval_run,
        } => {
            let actor = actor(author);
            let suite_file = require_eval.or_else(|| {
                config
                    .prompt_gates
                    .iter()
                    .find(|g| g.gate.prompt == name && g.gate.label == label)
                    .map(|g| g.suite_file.clone())
            });
            let vouching = match (eval_run, suite_file) {
                (Some(run), _) => Some(run),
                (None, Some(file)) => {
                    registry.resolve(&name, &Selector::Version(version)).await?;
                    let report = crate::eval::vouch(config, open, &file, &name, version).await?;
                    if !report.passed {
                        let failed: Vec<String> = report
                            .gates
                            .iter()
                            .filter(|g| !g.passed)
                            .map(|g| format!("{}: {}", g.gate, g.detail))
                            .collect();
                        return Err(anyhow::Error::new(crate::eval::Exit {
                            code: 1,
                            message: format!(
                                "{name}@{label} stays where it was: suite `{}` did not pass on v{version} ({})",
                                report.suite,
                                failed.join("; ")
                            ),
                        }));
                    }
                    report.run_id
                }
                (None, None) => None,
            };
            let moved = match vouching {
                Some(run) => {
                    registry
                        .set_label_vouched(&name, &label, version, &actor, &reason, run)
                        .await?
                }
                None => {
                    registry
                        .set_label(&name, &label, version, &actor, &reason)
                        .await?
                }
            };
            let vouched = moved
                .eval_run
                .map(|run| format!(" (vouched for by eval run {run})"))
                .unwrap_or_default();
            match moved.from_version {
                Some(from) => println!("{name}@{label}: v{from} → v{}{vouched}", moved.to_version),
                None => println!("{name}@{label}: → v{}{vouched}", moved.to_version),
            }
            crate::audit::record(
                catalog,
                "prompt.label",
                &format!("{name}@{label}"),
                serde_json::json!({"from": moved.from_version, "to": moved.to_version,
                    "eval_run": moved.eval_run, "reason": reason}),
            )
            .await;
            crate::eval::continuous(config, open, crate::eval::Trigger::Prompt(&name)).await;
        }
        PromptCommand::Rollback {
            name,
            label,
            reason,
            author,
        } => {
            let moved = registry
                .rollback(&name, &label, &actor(author), &reason)
                .await?;
            println!(
                "{name}@{label}: v{} → v{} (rolled back)",
                moved.from_version.unwrap_or_default(),
                moved.to_version
            );
            crate::audit::record(
                catalog,
                "prompt.rollback",
                &format!("{name}@{label}"),
                serde_json::json!({"from": moved.from_version, "to": moved.to_version, "reason": reason}),
            )
            .await;
            crate::eval::continuous(config, open, crate::eval::Trigger::Prompt(&name)).await;
        }
        PromptCommand::History { name, json } => {
            let versions = catalog.list_prompt_versions(&name).await?;
            if versions.is_empty() {
                bail!("prompt `{name}` does not exist");
            }
            if json {
                let moves = catalog.prompt_label_history(&name).await?;
                let listed = serde_json::json!({
                    "versions": versions.iter().map(|v| serde_json::json!({"version": v.version, "created_at": v.created_at, "author": v.author, "message": v.message})).collect::<Vec<_>>(),
                    "label_moves": moves,
                });
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(());
            }
            for version in versions {
                println!(
                    "v{:<4} {}  {:<12} {}",
                    version.version,
                    version.created_at.to_rfc3339(),
                    version.author,
                    version.message
                );
            }
            for moved in catalog.prompt_label_history(&name).await? {
                let from = moved
                    .from_version
                    .map_or_else(|| "new".to_owned(), |v| format!("v{v}"));
                let vouched = moved
                    .eval_run
                    .map(|run| format!("  [eval run {run}]"))
                    .unwrap_or_default();
                println!(
                    "label {} {from} → v{}  {}  {}  {}{vouched}",
                    moved.label,
                    moved.to_version,
                    moved.moved_at.to_rfc3339(),
                    moved.actor,
                    moved.reason
                );
            }
        }
        PromptCommand::Status { paths, check, json } => {
            let mut files = Vec::new();
            for path in prompt_files(&paths)? {
                files.push((path.display().to_string(), read_prompt(&path)?));
            }
            let statuses = registry.status(&files).await?;
            let behind: Vec<&str> = statuses
                .iter()
                .filter(|s| s.matching_version.is_none() || s.matching_version != s.latest_version)
                .map(|s| s.path.as_str())
                .collect();
            if json {
                let listed: Vec<Value> = statuses
                    .iter()
                    .map(|s| {
                        serde_json::json!({"path": s.path, "name": s.name,
                            "matching_version": s.matching_version, "latest_version": s.latest_version,
                            "labels": s.labels.iter().map(|(label, version, same)| serde_json::json!({"label": label, "version": version, "same_content": same})).collect::<Vec<_>>()})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&listed)?);
            }
            for status in statuses.iter().filter(|_| !json) {
                let state = match (status.matching_version, status.latest_version) {
                    (Some(v), Some(latest)) if v == latest => format!("published as v{v}"),
                    (Some(v), Some(latest)) => format!("matches v{v}, older than latest v{latest}"),
                    (None, Some(latest)) => format!("modified: not published (latest v{latest})"),
                    _ => "new: never published".to_owned(),
                };
                let labels: Vec<String> = status
                    .labels
                    .iter()
                    .map(|(label, version, same)| {
                        format!(
                            "{label}→v{version}{}",
                            if *same { "" } else { " (differs)" }
                        )
                    })
                    .collect();
                println!(
                    "{:<40} {state}{}",
                    status.path,
                    if labels.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", labels.join(", "))
                    }
                );
            }
            if check && !behind.is_empty() {
                anyhow::bail!(
                    "{} prompt file(s) are not published as their latest version: {}; publish them with `cairn prompt push`",
                    behind.len(),
                    behind.join(", ")
                );
            }
        }
        PromptCommand::Render {
            reference,
            vars,
            var,
        } => {
            let mut variables: Value = serde_json::from_str(&vars)
                .context("--vars is not valid JSON: give an object like '{\"question\": \"…\"}'")?;
            let object = variables
                .as_object_mut()
                .context("--vars must be a JSON object")?;
            for pair in var {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("--var `{pair}`: write it as KEY=VALUE"))?;
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                object.insert(key.to_owned(), value);
            }
            let (name, selector) = Selector::parse_reference(&reference);
            let rendered = registry.render(&name, &selector, &variables).await?;
            println!(
                "# {}@v{}",
                rendered.name,
                rendered.version.unwrap_or_default()
            );
            for message in rendered.messages {
                println!("=== {}\n{}", message.role.as_str(), message.content);
            }
        }
    }
    Ok(())
}
