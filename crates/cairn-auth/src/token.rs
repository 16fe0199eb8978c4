//! Bearer tokens from the OpenID Connect provider (JWTs), verified against the keys it publishes
//! (JWKS): signature, issuer, audience, expiry. No HTTP here: the server fetches the key set and
//! fetches it again when a token names a key it does not have (the provider rotated its keys).

use std::sync::RwLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

/// Seconds of clock difference with the provider that are forgiven on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signed with a key the provider's key set does not have (yet): fetch the set again.
    #[error("the token is signed with a key the issuer does not publish (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub subject: String,
    /// `preferred_username`, else `email`, else the subject.
    pub name: String,
    /// Every claim, for the roles claim.
    pub claims: Value,
}

/// Verifies the provider's JWTs; one per process.
#[derive(Debug)]
pub struct TokenVerifier {
    issuer: String,
    audiences: Vec<String>,
    keys: RwLock<JwkSet>,
}

impl TokenVerifier {
    /// Tokens of `issuer` for one of `audiences`, signed by a key of `keys`.
    pub fn new(issuer: &str, audiences: Vec<String>, keys: JwkSet) -> TokenVerifier {
        TokenVerifier {
            issuer: issuer.to_owned(),
            audiences,
            keys: RwLock::new(keys),
        }
    }

    /// The provider's current key set, after a rotation.
    pub fn replace_keys(&self, keys: JwkSet) {
        if let Ok(mut current) = self.keys.write() {
            *current = keys;
        }
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let invalid = |e: jsonwebtoken::errors::Error| TokenError::Invalid(e.to_string());
        let header = decode_header(token).map_err(invalid)?;
        // Shared-secret algorithms would let anyone holding the public key sign: asymmetric only.
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(TokenError::Invalid(format!(
                "{:?} tokens are not accepted; the provider must sign with its published keys",
                header.alg
            )));
        }
        let key = {
            let keys = self
                .keys
                .read()
                .map_err(|_| TokenError::Invalid("the key set is unavailable".into()))?;
            let jwk = match &header.kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            }
            .ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
            DecodingKey::from_jwk(jwk).map_err(invalid)?
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Value>(token, &key, &validation).map_err(invalid)?;
        let text = |name: &str| data.claims[name].as_str().map(str::to_owned);
        let subject = text("sub").ok_or_else(|| TokenError::Invalid("no subject".into()))?;
        Ok(VerifiedToken {
            name: text("preferred_username")
                .or_else(|| text("email"))
                .unwrap_or_else(|| subject.clone()),
            subject,
            claims: data.claims,
        })
    }
}

/// The strings of a claim that is a list of strings, or one string.
pub fn claim_strings(claims: &Value, claim: &str) -> Vec<String> {
    match &claims[claim] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_secret_tokens_are_refused_whatever_they_claim() {
        let verifier = TokenVerifier::new(
            "https://login.example.com",
            vec!["cairn".into()],
            JwkSet { keys: Vec::new() },
        );
        let claims = serde_json::json!({"sub": "mallory", "iss": "https://login.example.com",
            "aud": "cairn", "exp": 4_102_444_800_u64});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
        )
        .expect("encode");
        let refused = verifier.verify(&token).expect_err("HS256 refused");
        assert!(refused.to_string().contains("HS256"), "{refused}");
        let unsigned = format!("{}.", token.rsplit_once('.').expect("JWT").0);
        assert!(verifier.verify(&unsigned).is_err());
    }

    #[test]
    fn a_roles_claim_may_be_a_list_or_one_string() {
        let claims = serde_json::json!({"roles": ["read", 7, "write"], "group": "admin"});
        assert_eq!(claim_strings(&claims, "roles"), ["read", "write"]);
        assert_eq!(claim_strings(&claims, "group"), ["admin"]);
        assert!(claim_strings(&claims, "missing").is_empty());
    }
}
