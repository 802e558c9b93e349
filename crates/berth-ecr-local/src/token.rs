//! Registry tokens (the password half of `AWS:<password>`) and STS session secrets, both derived
//! from the server key so nothing secret has to be stored: a token is its claims plus an HMAC.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What a registry token grants: the registry namespace and the principal whose policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub registry_id: String,
    pub region: String,
    /// `user:<name>` or `role:<name>`.
    pub principal: String,
    pub expires_at: i64,
}

pub struct Keys {
    key: [u8; 32],
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

impl Keys {
    pub fn new(key: [u8; 32]) -> Keys {
        Keys { key }
    }

    fn mac(&self, label: &str, data: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(label.as_bytes());
        m.update(b"\0");
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    pub fn issue(&self, c: &Claims) -> String {
        let payload = format!(
            "{}|{}|{}|{}",
            c.registry_id, c.region, c.principal, c.expires_at
        );
        let sig = URL_SAFE_NO_PAD.encode(self.mac("registry-token", &payload));
        format!("{}.{sig}", URL_SAFE_NO_PAD.encode(payload))
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (payload, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
        let expected = URL_SAFE_NO_PAD.encode(self.mac("registry-token", &payload));
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return Err(TokenError::Invalid);
        }
        let parts: Vec<&str> = payload.split('|').collect();
        let [registry_id, region, principal, expires_at] = parts.as_slice() else {
            return Err(TokenError::Invalid);
        };
        let claims = Claims {
            registry_id: registry_id.to_string(),
            region: region.to_string(),
            principal: principal.to_string(),
            expires_at: expires_at.parse().map_err(|_| TokenError::Invalid)?,
        };
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// A download URL's signature: one blob of one repository, GET or HEAD only, until `expires_at`
    /// — what an S3 pre-signed URL is, and nothing a registry token could do besides.
    pub fn sign_download(&self, c: &Claims, repository: &str, digest: &str) -> String {
        let payload = format!(
            "{}|{}|{}|{}|{repository}|{digest}",
            c.registry_id, c.region, c.principal, c.expires_at
        );
        URL_SAFE_NO_PAD.encode(self.mac("download-url", &payload))
    }

    /// Checks a download URL's signature; returns the claims it was made for.
    pub fn verify_download(
        &self,
        c: &Claims,
        repository: &str,
        digest: &str,
        signature: &str,
        now: i64,
    ) -> Result<(), TokenError> {
        let expected = self.sign_download(c, repository, digest);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(TokenError::Invalid);
        }
        if c.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// The secret access key of an STS session key id.
    pub fn session_secret(&self, access_key_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(&self.mac("session-secret", access_key_id)[..30])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let k = Keys::new([7; 32]);
        let c = Claims {
            registry_id: "123456789012".into(),
            region: "us-east-1".into(),
            principal: "user:demo".into(),
            expires_at: 100,
        };
        let t = k.issue(&c);
        assert_eq!(k.verify(&t, 99).unwrap(), c);
        assert_eq!(k.verify(&t, 100), Err(TokenError::Expired));
        let forged = k.issue(&Claims {
            expires_at: 10_000,
            ..c.clone()
        });
        let (p, _) = forged.split_once('.').unwrap();
        let (_, s) = t.split_once('.').unwrap();
        assert_eq!(k.verify(&format!("{p}.{s}"), 99), Err(TokenError::Invalid));
        assert_eq!(Keys::new([8; 32]).verify(&t, 99), Err(TokenError::Invalid));
        assert_ne!(k.session_secret("ASIA1"), k.session_secret("ASIA2"));
    }
}
