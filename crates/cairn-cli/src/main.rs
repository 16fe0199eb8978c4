//! The `cairn` command. Parses arguments, reads the environment, loads the config and calls into
//! `cairn-runtime` (ingest, search, prompts, keys, benchmarks) or `cairn-server` (`serve`, `mcp`);
//! no logic of its own beyond that.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_runtime::config::{self, Sources};
use clap::{Args, Parser, Subcommand};

mod audit;
mod bench;
mod bench_gateway;
mod bench_rag;
mod dataset;
mod eval;
mod key;
mod prompt;
mod prune;
mod rag;
mod session;

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "LLMOps for RAG and agent applications, in one binary"
)]
struct Cli {
    /// Config file (TOML). Default: ./cairn.toml if it exists. Environment variables CAIRN__SECTION__KEY
    /// override it, and flags override those.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server (embedded defaults: SQLite under ./.cairn, 127.0.0.1:8080).
    Serve(ServeArgs),
    /// Print a shell completion script: `cairn completions bash > /etc/bash_completion.d/cairn`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Apply catalog migrations and exit.
    Migrate(StorageArgs),
    /// Measure speed: `cairn bench generate --model NAME`, `bench embed`, `bench index`, `bench ingest PATH`, `bench gateway`.
    Bench {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Load documents into a collection and sync it: `cairn ingest ./docs --collection handbook`.
    Ingest {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: rag::IngestArgs,
    },
    /// Search a collection: `cairn search "how do I rotate keys?" --collection handbook`.
    Search {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: rag::SearchArgs,
    },
    /// Serve MCP over stdio for an IDE agent, as the local user (the HTTP endpoint is /mcp of `serve`).
    Mcp(StorageArgs),
    /// API keys for the /mcp endpoint: `cairn key create --name ci --collections handbook`, list, revoke.
    Key {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Run eval suites and read stored runs: `cairn eval run evals/`, `eval list SUITE`, `eval show RUN`.
    /// Exit codes: 0 every gate held, 1 a gate failed, 2 the suite could not run.
    Eval {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: eval::EvalCommand,
    },
    /// Manage versioned prompts: push, list, show, diff, label, rollback, history, status, render.
    Prompt {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: prompt::PromptCommand,
    },
    /// Eval datasets from production: `cairn dataset from-lineage --feedback down --out cases.jsonl`.
    Dataset {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: dataset::DatasetCommand,
    },
    /// Delete what `[retention]` no longer keeps (the server also does it periodically).
    Prune {
        #[command(flatten)]
        storage: StorageArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Web UI sessions: `cairn session revoke --user SUBJECT` signs a user out everywhere.
    Session {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: session::SessionCommand,
    },
    /// The audit log: who changed what, and refused requests: `cairn audit --since 24h --outcome refused`.
    Audit {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: audit::AuditArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Prompt-processing and decode tokens/s of a model or route.
    Generate(bench::GenerateArgs),
    /// Sentences/s of the local embedding model by batch size, optionally beside Python.
    Embed(bench_rag::EmbedArgs),
    /// Query latency and recall@k of a vector index against exact search.
    Index(bench_rag::IndexArgs),
    /// End-to-end ingest throughput and peak memory.
    Ingest(bench_rag::IngestBenchArgs),
    /// Gateway overhead over a fixed-latency mock upstream, optionally beside the LiteLLM proxy.
    Gateway(bench_gateway::GatewayArgs),
    /// The fixed-latency OpenAI-compatible upstream `bench gateway` runs.
    #[command(hide = true)]
    MockUpstream(bench_gateway::MockArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Validate the configuration and exit without starting.
    #[arg(long)]
    check: bool,
    /// Address to listen on, IP:PORT (server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
struct StorageArgs {
    /// Data directory of the embedded mode (data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Catalog database URL, postgres://… or sqlite://… (database.url).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

impl StorageArgs {
    fn flags(&self) -> Vec<(String, String, String)> {
        let mut flags = Vec::new();
        if let Some(dir) = &self.data_dir {
            flags.push((
                "--data-dir".into(),
                "data_dir".into(),
                toml_quote(&dir.display().to_string()),
            ));
        }
        if let Some(url) = &self.database_url {
            flags.push((
                "--database-url".into(),
                "database.url".into(),
                toml_quote(url),
            ));
        }
        flags
    }
}

/// Quotes a flag value so the config layer reads it as a string, whatever it looks like.
fn toml_quote(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

fn sources(cli_config: Option<PathBuf>, flags: Vec<(String, String, String)>) -> Sources {
    let file = cli_config.or_else(|| {
        std::env::current_dir()
            .ok()
            .and_then(|dir| config::default_file(&dir))
    });
    Sources {
        file,
        env: std::env::vars().collect(),
        flags,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (flags, check) = match &cli.command {
        Command::Completions { shell } => {
            // Needs no configuration: it only describes the command line.
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "cairn", &mut script);
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return ExitCode::SUCCESS;
        }
        Command::Serve(args) => {
            let mut flags = args.storage.flags();
            if let Some(listen) = &args.listen {
                flags.push((
                    "--listen".into(),
                    "server.listen".into(),
                    toml_quote(listen),
                ));
            }
            (flags, args.check)
        }
        Command::Migrate(args)
        | Command::Mcp(args)
        | Command::Key { storage: args, .. }
        | Command::Prompt { storage: args, .. }
        | Command::Audit { storage: args, .. }
        | Command::Session { storage: args, .. }
        | Command::Prune { storage: args, .. }
        | Command::Dataset { storage: args, .. }
        | Command::Eval { storage: args, .. }
        | Command::Bench { storage: args, .. }
        | Command::Ingest { storage: args, .. }
        | Command::Search { storage: args, .. } => (args.flags(), false),
    };
    let config = match config::load(&sources(cli.config, flags)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!(
            "configuration is valid: listen {}, catalog {}",
            config.listen,
            config.database.describe()
        );
        return ExitCode::SUCCESS;
    }
    cairn_runtime::telemetry::init(&config.log, std::env::var("RUST_LOG").ok().as_deref());

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            // Printed above, before any configuration was read.
            Command::Completions { .. } => Ok(()),
            Command::Serve(_) => {
                cairn_server::serve::serve(&config, cairn_server::serve::shutdown_signal(), |_| {})
                    .await?;
                Ok(())
            }
            Command::Migrate(_) => {
                let catalog = cairn_runtime::catalog::open_and_migrate(&config).await?;
                catalog.close().await;
                println!("catalog migrated: {}", config.database.describe());
                Ok(())
            }
            Command::Bench {
                command: BenchCommand::Embed(args),
                ..
            } => bench_rag::embed(&config, &args).await,
            Command::Bench {
                command: BenchCommand::Index(args),
                ..
            } => bench_rag::index(&config, &args).await,
            Command::Bench {
                command: BenchCommand::Ingest(args),
                ..
            } => bench_rag::ingest(&config, &args).await,
            Command::Bench {
                command: BenchCommand::Gateway(args),
                ..
            } => bench_gateway::gateway(&args).await,
            Command::Bench {
                command: BenchCommand::MockUpstream(args),
                ..
            } => bench_gateway::mock_upstream(&args).await,
            Command::Bench {
                command: BenchCommand::Generate(args),
                ..
            } => {
                // Load only what the benchmark uses: local models take seconds each to load.
                let wanted: Vec<String> = match config.routes.iter().find(|r| r.name == args.model)
                {
                    Some(route) => route.targets.clone(),
                    None => vec![args.model.clone()],
                };
                let models: Vec<_> = config
                    .models
                    .iter()
                    .filter(|m| wanted.contains(&m.name))
                    .cloned()
                    .collect();
                let routes: Vec<_> = config
                    .routes
                    .iter()
                    .filter(|r| r.name == args.model)
                    .cloned()
                    .collect();
                let models =
                    cairn_runtime::models::ModelDirectory::from_config(&models, &routes, None)
                        .await
                        .map_err(anyhow::Error::msg)?;
                let Some(model) = models.get(&args.model) else {
                    let configured: Vec<&str> = config
                        .models
                        .iter()
                        .map(|m| m.name.as_str())
                        .chain(config.routes.iter().map(|r| r.name.as_str()))
                        .collect();
                    anyhow::bail!(
                        "no model or route is named `{}`; configured: {}",
                        args.model,
                        configured.join(", ")
                    );
                };
                bench::generate(&*model, &args).await
            }
            Command::Ingest { args, .. } => {
                let catalog = cairn_runtime::catalog::open_for_use(&config).await?;
                let rag = cairn_runtime::rag::build(&config, &catalog).await?;
                let (collection, no_eval) = (args.collection.clone(), args.no_eval);
                let report = rag::ingest(&rag, args).await;
                if let Ok(report) = &report
                    && report.added + report.updated + report.removed > 0
                {
                    audit::record(
                        &*catalog.as_dyn(),
                        "ingest",
                        &collection,
                        serde_json::json!({"added": report.added, "updated": report.updated,
                            "removed": report.removed, "failed": report.failed.len()}),
                    )
                    .await;
                }
                if let Ok(report) = &report
                    && report.added + report.updated + report.removed > 0
                    && !no_eval
                {
                    drop(rag);
                    eval::continuous(&config, &catalog, eval::Trigger::Collection(&collection))
                        .await;
                }
                catalog.close().await;
                if !report?.failed.is_empty() {
                    anyhow::bail!(
                        "some documents could not be ingested (listed above); the rest were"
                    );
                }
                Ok(())
            }
            Command::Search { args, .. } => {
                let catalog = cairn_runtime::catalog::open_for_use(&config).await?;
                let rag = cairn_runtime::rag::build(&config, &catalog).await?;
                let result = rag::search(&rag, args).await;
                catalog.close().await;
                result
            }
            Command::Mcp(_) => {
                let catalog = cairn_runtime::catalog::open_for_use(&config).await?;
                let state = cairn_server::serve::build_state(&config, &catalog).await?;
                let server = cairn_mcp::CairnMcp::for_stdio(cairn_server::mcp::knowledge(&state));
                let result = server.serve_stdio().await.map_err(anyhow::Error::msg);
                catalog.close().await;
                result
            }
            Command::Key { command, .. } => {
                with_catalog(&config, async |c| key::run(c, command).await).await
            }
            Command::Eval { command, .. } => eval::run(&config, command).await,
            Command::Dataset { command, .. } => {
                with_catalog(&config, async |c| dataset::run(c, command).await).await
            }
            Command::Prune { json, .. } => {
                with_catalog(&config, async |c| {
                    prune::run(c, &config.retention, json).await
                })
                .await
            }
            Command::Session { command, .. } => {
                with_catalog(&config, async |c| session::run(c, command).await).await
            }
            Command::Audit { args, .. } => {
                with_catalog(&config, async |c| audit::run(c, args).await).await
            }
            Command::Prompt { command, .. } => {
                let catalog = cairn_runtime::catalog::open_for_use(&config).await?;
                let result = prompt::run(&config, &catalog, command).await;
                catalog.close().await;
                result
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<eval::Exit>().is_some() => {
            let code = e.downcast_ref::<eval::Exit>().map_or(2, |exit| exit.code);
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command that needs only the catalog: opens (and migrates) it, runs, closes it.
async fn with_catalog(
    config: &config::Config,
    command: impl AsyncFnOnce(&dyn cairn_core::Catalog) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let catalog = cairn_runtime::catalog::open_for_use(config).await?;
    let result = command(&*catalog.as_dyn()).await;
    catalog.close().await;
    result
}
