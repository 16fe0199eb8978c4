//! Who is calling Cairn, in one place for every front door: API keys (generated once, stored as a
//! hash, verified against the catalog with a short cache), the OIDC provider's bearer tokens
//! ([`TokenVerifier`]), [`Grant`]s (which tools a key may call and
//! which collections it may read), and the [`cairn_core::Principal`] a verified caller becomes.
//!
//! No HTTP: the server and the MCP endpoint read the bearer token from their requests and map
//! [`AuthError`] to their own responses.

mod grant;
pub mod keys;
mod token;
mod verify;

pub use grant::{ALL_COLLECTIONS, Grant, Role, Via, roles_of};
pub use jsonwebtoken::jwk::JwkSet;
pub use token::{TokenError, TokenVerifier, VerifiedToken, claim_strings};
pub use verify::{AuthError, KeyVerifier};
