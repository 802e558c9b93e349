//! Offline administration: works on the data directory or database directly, so it also works
//! when the admin token is lost.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::cli::{Global, ServeArgs};
use crate::config::server_options;
use crate::output;

pub async fn rotate_admin(global: &Global, args: &ServeArgs) -> anyhow::Result<()> {
    let options = server_options(args)?;
    let token = berth_server::admin::rotate_admin_token(&options).await?;
    let file = options
        .data_dir
        .join(berth_server::auth::INITIAL_ADMIN_TOKEN_FILE);
    output::print(
        global.output,
        &json!({"token": token.expose_secret(), "file": file}),
        |_| {
            eprintln!(
                "the old admin token no longer works; the new one is in {}:",
                file.display()
            );
            println!("{}", token.expose_secret());
        },
    );
    Ok(())
}

pub async fn rotate_key(global: &Global, args: &ServeArgs) -> anyhow::Result<()> {
    let options = server_options(args)?;
    let new_key = std::env::var("BERTH_NEW_MASTER_KEY")
        .ok()
        .map(SecretString::from);
    let rotation = berth_server::admin::rotate_master_key(&options, new_key).await?;
    output::print(
        global.output,
        &json!({"resealed": rotation.resealed, "key_id": rotation.new_key_id}),
        |_| {
            println!(
                "re-sealed {} secret(s) under master key {}",
                rotation.resealed, rotation.new_key_id
            );
            match &rotation.new_key_text {
                Some(_) => eprintln!(
                    "set BERTH_MASTER_KEY to the new key below on every replica and restart them:"
                ),
                None => eprintln!(
                    "the key file {} now holds only the new key; restart running servers",
                    options.key_file().display()
                ),
            }
        },
    );
    if let Some(text) = rotation.new_key_text {
        println!("{}", text.expose_secret());
    }
    Ok(())
}
