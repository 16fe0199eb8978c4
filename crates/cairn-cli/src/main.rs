//! The `cairn` command. Parses arguments, reads the environment, loads the config and calls into
//! `cairn-server`; no logic of its own beyond that.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_server::config::{self, Sources};
use clap::{Args, Parser, Subcommand};

mod bench;
mod prompt;

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
    /// Apply catalog migrations and exit.
    Migrate(StorageArgs),
    /// Measure a configured model's speed: `cairn bench generate --model NAME`.
    Bench {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Manage versioned prompts: push, list, show, diff, label, rollback, history, status, render.
    Prompt {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: prompt::PromptCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Prompt-processing and decode tokens/s of a model or route.
    Generate(bench::GenerateArgs),
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
        | Command::Prompt { storage: args, .. }
        | Command::Bench { storage: args, .. } => (args.flags(), false),
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
    cairn_server::telemetry::init(&config.log, std::env::var("RUST_LOG").ok().as_deref());

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            Command::Serve(_) => {
                cairn_server::serve::serve(&config, cairn_server::serve::shutdown_signal(), |_| {})
                    .await?;
                Ok(())
            }
            Command::Migrate(_) => {
                let catalog = cairn_server::serve::open_and_migrate(&config).await?;
                catalog.close().await;
                println!("catalog migrated: {}", config.database.describe());
                Ok(())
            }
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
                let models = cairn_server::models::ModelDirectory::from_config(&models, &routes)
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
            Command::Prompt { command, .. } => {
                let catalog = cairn_server::serve::open_for_use(&config).await?;
                let registry = cairn_server::serve::prompt_registry(&config, catalog.as_dyn());
                let result = prompt::run(&registry, &*catalog.as_dyn(), command).await;
                catalog.close().await;
                result
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
