//! `cairn key create|list|revoke`: API keys for the REST, OpenAI-compatible and MCP endpoints, with
//! their roles and their tool and collection allow-lists. A key is printed once, at creation; the catalog keeps only its hash.

use cairn_core::Catalog;
use cairn_mcp::TOOL_NAMES;
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it (once).
    Create {
        /// A unique name, to recognise and revoke it.
        #[arg(long)]
        name: String,
        /// Tools it may call, comma-separated. Default: all.
        #[arg(long, value_delimiter = ',')]
        tools: Vec<String>,
        /// Collections it may read, comma-separated, or `*` for all. Default: none.
        #[arg(long, value_delimiter = ',')]
        collections: Vec<String>,
        /// What it may do, comma-separated: read (search, answer, chat, MCP tools), write (collections
        /// and documents), prompt_admin (publish prompts, move labels), admin (everything).
        #[arg(long, value_delimiter = ',', default_value = "read")]
        roles: Vec<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name; requests with it are refused from then on.
    Revoke { name: String },
}

pub async fn run(catalog: &dyn Catalog, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            name,
            tools,
            collections,
            roles,
        } => {
            let generated =
                cairn_auth::keys::checked(&name, &roles, &tools, &collections, &TOOL_NAMES)
                    .map_err(anyhow::Error::msg)?;
            if catalog
                .list_api_keys()
                .await?
                .iter()
                .any(|k| k.name == name && k.revoked_at.is_none())
            {
                anyhow::bail!(
                    "an active key is already named `{name}`; revoke it first or pick another name"
                );
            }
            let key = catalog.create_api_key(generated.record).await?;
            eprintln!(
                "created key `{}`: roles {}, tools {}, collections {}. Store it now; it is not shown again:",
                key.name,
                key.roles.join(", "),
                if key.tools.is_empty() {
                    "all".to_owned()
                } else {
                    key.tools.join(", ")
                },
                if key.collections.is_empty() {
                    "none".to_owned()
                } else {
                    key.collections.join(", ")
                },
            );
            println!("{}", generated.secret);
            crate::audit::record(
                catalog,
                "key.create",
                &key.name,
                serde_json::json!({"roles": key.roles, "tools": key.tools, "collections": key.collections}),
            )
            .await;
        }
        KeyCommand::List { json } => {
            let keys = catalog.list_api_keys().await?;
            if json {
                let rows: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({"name": k.name, "prefix": k.prefix, "roles": k.roles, "tools": k.tools,
                            "collections": k.collections, "created_at": k.created_at.to_rfc3339(),
                            "revoked_at": k.revoked_at.map(|t| t.to_rfc3339())})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if keys.is_empty() {
                println!("no keys; create one with `cairn key create --name NAME --collections …`");
                return Ok(());
            }
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(vec![
                    "name",
                    "key",
                    "roles",
                    "tools",
                    "collections",
                    "created",
                    "state",
                ]);
            for key in keys {
                table.add_row(vec![
                    key.name,
                    format!("{}…", key.prefix),
                    key.roles.join(", "),
                    if key.tools.is_empty() {
                        "all".into()
                    } else {
                        key.tools.join(", ")
                    },
                    if key.collections.is_empty() {
                        "none".into()
                    } else {
                        key.collections.join(", ")
                    },
                    key.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    match key.revoked_at {
                        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                        None => "active".into(),
                    },
                ]);
            }
            println!("{table}");
        }
        KeyCommand::Revoke { name } => {
            if catalog.revoke_api_key(&name).await? {
                println!("revoked key `{name}`");
                crate::audit::record(catalog, "key.revoke", &name, serde_json::Value::Null).await;
            } else {
                anyhow::bail!("no active key is named `{name}`; `cairn key list` shows them");
            }
        }
    }
    Ok(())
}
