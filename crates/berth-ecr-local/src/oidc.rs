//! Web identity tokens for AssumeRoleWithWebIdentity (IRSA, CI OIDC): RS256 JWTs checked against
//! the RSA keys of an OIDC provider configured in `iam.toml`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// An identity provider as `iam.toml` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// `https://issuer.example.com` (the `iss` claim).
    pub issuer: String,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The issuer's RSA keys, JWK style: `kid`, base64url `n` and `e`.
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    pub kid: String,
    pub n: String,
    pub e: String,
}

impl OidcProvider {
    /// The provider ARN that role trust lists name: `arn:aws:iam::<acct>:oidc-provider/<host/path>`.
    pub fn arn(&self, account_id: &str) -> String {
        let host = self
            .issuer
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        format!("arn:aws:iam::{account_id}:oidc-provider/{host}")
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    aud: Audience,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Claims {
    pub fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Audience::None => vec![],
            Audience::One(a) => vec![a],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Invalid(String),
    Expired,
}

fn b64(part: &str) -> Result<Vec<u8>, TokenProblem> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenProblem::Invalid("the token is not a JWT (bad base64url)".into()))
}

/// Verifies the token against the configured providers; returns the provider and the claims.
pub fn verify<'p>(
    token: &str,
    providers: &'p [OidcProvider],
    now: i64,
) -> Result<(&'p OidcProvider, Claims), TokenProblem> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(TokenProblem::Invalid(
            "the token is not a JWT (expected three parts)".into(),
        ));
    };
    let header: Header = serde_json::from_slice(&b64(h)?)
        .map_err(|_| TokenProblem::Invalid("unreadable JWT header".into()))?;
    if header.alg != "RS256" {
        return Err(TokenProblem::Invalid(format!(
            "unsupported JWT algorithm {}",
            header.alg
        )));
    }
    let claims: Claims = serde_json::from_slice(&b64(p)?)
        .map_err(|_| TokenProblem::Invalid("unreadable JWT claims".into()))?;
    let provider = providers
        .iter()
        .find(|pr| pr.issuer == claims.iss)
        .ok_or_else(|| {
            TokenProblem::Invalid(format!(
                "No OpenIDConnect provider found in your account for {}",
                claims.iss
            ))
        })?;
    let signature = b64(s)?;
    let signed = format!("{h}.{p}");
    let verified = provider
        .keys
        .iter()
        .filter(|k| header.kid.as_ref().is_none_or(|kid| *kid == k.kid))
        .any(|k| {
            let (Ok(n), Ok(e)) = (b64(&k.n), b64(&k.e)) else {
                return false;
            };
            ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    signed.as_bytes(),
                    &signature,
                )
                .is_ok()
        });
    if !verified {
        return Err(TokenProblem::Invalid(
            "the token's signature does not verify with the provider's keys".into(),
        ));
    }
    if !provider.audiences.is_empty()
        && !claims
            .audiences()
            .iter()
            .any(|a| provider.audiences.iter().any(|x| x == a))
    {
        return Err(TokenProblem::Invalid("Incorrect token audience".into()));
    }
    if claims.exp <= now {
        return Err(TokenProblem::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + 300) {
        return Err(TokenProblem::Invalid("the token is not yet valid".into()));
    }
    Ok((provider, claims))
}
