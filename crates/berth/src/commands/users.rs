//! `berth user add|passwd|delete|list`: people who sign in to the web pages, through
//! `/api/v1/users`. Passwords come from stdin (scripts) or a prompt, never from an argument,
//! which other users could read in the process list.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use berth_api::{NewPassword, NewUser, UserList, UserView};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

use crate::cli::{Global, UserCmd};
use crate::client::{Api, encode};
use crate::output;

/// The first line of stdin, or a prompt (twice, to catch a typo) on a terminal.
fn read_password() -> anyhow::Result<SecretString> {
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        let line = text.lines().next().unwrap_or("").to_owned();
        if line.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(SecretString::from(line));
    }
    let first =
        rpassword::prompt_password("Password: ").context("cannot prompt for the password")?;
    let again = rpassword::prompt_password("Again: ").context("cannot prompt for the password")?;
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(SecretString::from(first))
}

pub async fn user(global: &Global, cmd: UserCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        UserCmd::Add {
            name,
            admin,
            subscription,
        } => {
            let body = NewUser {
                name,
                password: read_password()?,
                admin,
                subscription,
            };
            let v: UserView = api.call(Method::POST, "/api/v1/users", Some(&body)).await?;
            output::print(global.output, &v, |v| match &v.subscription {
                Some(s) => println!("added user {} (member of subscription {s})", v.name),
                None => println!("added user {} (admin)", v.name),
            });
        }
        UserCmd::Passwd { name } => {
            let body = NewPassword {
                password: read_password()?,
            };
            let path = format!("/api/v1/users/{}/password", encode(&name));
            api.exec(Method::PUT, &path, Some(&body)).await?;
            output::print(global.output, &json!({"password_set": name}), |_| {
                println!("set the password of {name}; their sessions have ended")
            });
        }
        UserCmd::Delete { name } => {
            api.delete(&format!("/api/v1/users/{}", encode(&name)))
                .await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("deleted user {name}")
            });
        }
        UserCmd::List => {
            let v: UserList = api.get("/api/v1/users").await?;
            output::print(global.output, &v, |v| {
                let rows: Vec<Vec<String>> = v
                    .items
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.clone(),
                            u.subscription.clone().unwrap_or_default(),
                            u.meta.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ROLE", "SUBSCRIPTION", "CREATED AT"], &rows)
            });
        }
    }
    Ok(())
}
