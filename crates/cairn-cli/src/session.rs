//! `cairn session revoke --user SUBJECT`: signs a user out everywhere at once (sessions are kept in
//! the catalog, so every replica refuses their cookies from the next request on).

use cairn_core::Catalog;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// End every web UI session of a user (the provider's subject, as `GET /v1/me` shows it).
    Revoke {
        #[arg(long)]
        user: String,
    },
}

pub async fn run(catalog: &dyn Catalog, command: SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::Revoke { user } => {
            let ended = catalog.revoke_user_sessions(&user).await?;
            println!("ended {ended} session(s) of `{user}`");
            crate::audit::record(
                catalog,
                "session.revoke",
                &format!("user:{user}"),
                serde_json::json!({"sessions": ended}),
            )
            .await;
        }
    }
    Ok(())
}
