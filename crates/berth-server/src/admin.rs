//! Offline administration that works on the store directly, even when no admin token is at hand:
//! rotating the admin token and rotating the master key.

use berth_store::{Keyring, MasterKey};
use secrecy::{ExposeSecret, SecretString};

use crate::{ServerOptions, StartError};

/// Mints a new admin token, invalidating the old one, and rewrites `initial-admin-token`.
pub async fn rotate_admin_token(options: &ServerOptions) -> Result<SecretString, StartError> {
    let store = options.open_store().await?;
    crate::auth::rotate_admin_token(store.as_ref(), &options.data_dir).await
}

pub struct KeyRotation {
    pub resealed: usize,
    pub new_key_id: String,
    /// When the key came from `BERTH_MASTER_KEY`, the new key to put there (there is no file
    /// Berth could write it to).
    pub new_key_text: Option<SecretString>,
}

/// Re-seals every secret under a new master key in one transaction.
///
/// With a key file: the file first gets the new key beside the old (so a crash at any point
/// leaves a key that opens every secret), then the secrets are re-sealed, then the old key is
/// dropped. With `BERTH_MASTER_KEY`: the new key is taken from `new_key` or generated and
/// returned, and the operator swaps the variable.
pub async fn rotate_master_key(
    options: &ServerOptions,
    new_key: Option<SecretString>,
) -> Result<KeyRotation, StartError> {
    let store = options.open_store().await?;
    let (old, _) = options.keyring()?;
    let new_key = match new_key {
        Some(text) => Keyring::from_text("the new master key", text.expose_secret())?
            .primary()
            .clone(),
        None => MasterKey::generate()?,
    };
    let mut keys = vec![new_key.clone()];
    keys.extend(old.keys().iter().cloned());
    let both = Keyring::with_keys(keys).expect("at least one key");
    let from_file = options.master_key.is_none();
    if from_file {
        both.write_file(&options.key_file())?;
    }
    let resealed = store.reseal_all(&both).await?;
    if from_file {
        Keyring::new(new_key.clone()).write_file(&options.key_file())?;
    }
    Ok(KeyRotation {
        resealed,
        new_key_id: new_key.id().to_owned(),
        new_key_text: (!from_file).then(|| new_key.to_text()),
    })
}
