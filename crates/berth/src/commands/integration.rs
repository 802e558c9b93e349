//! `berth integration add|list|show|edit|delete`.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{AuthMode, Global, IntegrationCmd, IntegrationFields, RoleSource};
use crate::client::{Api, encode};
use crate::output::{self, list, s};

/// Reads the secret access key from a file, stdin, a prompt or (discouraged) the argument.
/// `needed` says whether to ask when no source was given.
fn secret(fields: &IntegrationFields, needed: bool) -> anyhow::Result<Option<String>> {
    if let Some(path) = &fields.secret_access_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --secret-access-key-file {}", path.display()))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    if let Some(value) = &fields.secret_access_key {
        eprintln!(
            "warning: a secret on the command line lands in shell history and `ps`; prefer the prompt, --secret-access-key-file or --secret-access-key-stdin"
        );
        return Ok(Some(value.clone()));
    }
    if fields.secret_access_key_stdin || (needed && !std::io::stdin().is_terminal()) {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the secret from stdin")?;
        let line = text.lines().next().unwrap_or("").to_owned();
        if line.is_empty() {
            bail!("no secret access key on stdin");
        }
        return Ok(Some(line));
    }
    if needed {
        let value = rpassword::prompt_password("AWS secret access key: ")
            .context("cannot prompt for the secret access key")?;
        return Ok(Some(value));
    }
    Ok(None)
}

fn keys(fields: &IntegrationFields, secret: Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(id) = &fields.access_key_id {
        m.insert("access_key_id".into(), json!(id));
    }
    if let Some(secret) = secret {
        m.insert("secret_access_key".into(), json!(secret));
    }
    m
}

/// Builds the `auth` object. `current` is the stored auth when editing, so flags not given keep
/// their stored values.
fn auth(
    fields: &IntegrationFields,
    current: Option<&Value>,
    adding: bool,
) -> anyhow::Result<Option<Value>> {
    let touches_auth = fields.auth.is_some()
        || fields.access_key_id.is_some()
        || fields.secret_access_key_file.is_some()
        || fields.secret_access_key_stdin
        || fields.secret_access_key.is_some()
        || fields.role_arn.is_some()
        || fields.external_id.is_some()
        || fields.session_name.is_some()
        || fields.role_source.is_some();
    if !adding && !touches_auth {
        return Ok(None);
    }
    let current_mode = current.and_then(|c| c["mode"].as_str());
    let mode = match (fields.auth, current_mode) {
        (Some(m), _) => m,
        (None, Some("assume_role")) => AuthMode::AssumeRole,
        (None, Some("ambient")) if fields.role_arn.is_some() => AuthMode::AssumeRole,
        (None, Some("ambient")) => AuthMode::Ambient,
        (None, _) if fields.role_arn.is_some() => AuthMode::AssumeRole,
        (None, _) => AuthMode::AccessKeys,
    };
    let mode_changed = current_mode.is_some_and(|m| {
        m != match mode {
            AuthMode::AccessKeys => "access_keys",
            AuthMode::AssumeRole => "assume_role",
            AuthMode::Ambient => "ambient",
        }
    });
    // A secret is asked for when new keys are being set up, not when other fields change.
    let needs_secret = |keys_before: bool| adding || fields.access_key_id.is_some() || !keys_before;
    Ok(Some(match mode {
        AuthMode::AccessKeys => {
            let had_keys = current_mode == Some("access_keys");
            let secret = secret(fields, needs_secret(had_keys && !mode_changed))?;
            let mut m = keys(fields, secret);
            m.insert("mode".into(), json!("access_keys"));
            Value::Object(m)
        }
        AuthMode::AssumeRole => {
            let cur = current.filter(|c| c["mode"] == "assume_role");
            let role_arn = fields
                .role_arn
                .clone()
                .or_else(|| cur.and_then(|c| c["role_arn"].as_str().map(str::to_owned)))
                .context("--role-arn is required with --auth assume-role")?;
            let mut m = Map::new();
            m.insert("mode".into(), json!("assume_role"));
            m.insert("role_arn".into(), json!(role_arn));
            for (key, flag) in [
                ("external_id", &fields.external_id),
                ("session_name", &fields.session_name),
            ] {
                let value = flag
                    .clone()
                    .or_else(|| cur.and_then(|c| c[key].as_str().map(str::to_owned)));
                if let Some(v) = value {
                    m.insert(key.into(), json!(v));
                }
            }
            let cur_source_keys = cur.is_some_and(|c| c["source"].is_object());
            let source = fields.role_source.unwrap_or(
                if cur_source_keys || fields.access_key_id.is_some() {
                    RoleSource::AccessKeys
                } else {
                    RoleSource::Ambient
                },
            );
            let source = match source {
                RoleSource::Ambient => json!("ambient"),
                RoleSource::AccessKeys => {
                    let secret = secret(fields, needs_secret(cur_source_keys))?;
                    Value::Object(keys(fields, secret))
                }
            };
            m.insert("source".into(), source);
            Value::Object(m)
        }
        AuthMode::Ambient => json!({"mode": "ambient"}),
    }))
}

fn common(fields: &IntegrationFields, body: &mut Map<String, Value>) {
    if let Some(r) = &fields.region {
        body.insert("region".into(), json!(r));
    }
    if let Some(r) = &fields.registry_id {
        body.insert("registry_id".into(), json!(r));
    }
    if let Some(e) = &fields.endpoint {
        body.insert("endpoint".into(), json!(e));
    }
    if let Some(on) = fields.export_long_lived_keys {
        body.insert("export_long_lived_keys".into(), json!(on));
    }
    if !fields.subscriptions.is_empty() {
        body.insert("subscriptions".into(), json!(fields.subscriptions));
    }
    if fields.all_runtimes {
        body.insert("runtimes".into(), json!({"all": true}));
    } else if !fields.runtimes.is_empty() {
        body.insert("runtimes".into(), json!({"selected": fields.runtimes}));
    }
}

fn auth_summary(auth: &Value) -> String {
    let keys = |k: &Value| {
        format!(
            "key {}, secret {}",
            s(&k["access_key_id"]),
            if k["secret_access_key_set"] == true {
                "set"
            } else {
                "missing"
            }
        )
    };
    match auth["mode"].as_str() {
        Some("access_keys") => format!("access_keys ({})", keys(auth)),
        Some("assume_role") => format!(
            "assume_role {} from {}{}",
            s(&auth["role_arn"]),
            if auth["source"].is_object() {
                keys(&auth["source"])
            } else {
                "ambient credentials".into()
            },
            auth["external_id"]
                .as_str()
                .map(|e| format!(", external id {e}"))
                .unwrap_or_default()
        ),
        Some(other) => other.to_owned(),
        None => "-".into(),
    }
}

fn runtimes(v: &Value) -> String {
    if v["all"] == true {
        "all".into()
    } else {
        list(&v["selected"])
    }
}

fn show_one(i: &Value) {
    let rows = [
        ("Name", s(&i["name"])),
        (
            "Type",
            format!("{} ({})", s(&i["type"]), s(&i["master_type"])),
        ),
        ("Region", s(&i["region"])),
        ("Auth", auth_summary(&i["auth"])),
        ("Registry id", s(&i["registry_id"])),
        ("Endpoint", s(&i["endpoint"])),
        (
            "Jobs get",
            if i["export_long_lived_keys"] == json!(true) {
                "the long-lived access keys (export_long_lived_keys on)".to_owned()
            } else {
                "short-lived STS sessions".to_owned()
            },
        ),
        ("Subscriptions", list(&i["subscriptions"])),
        ("Runtimes", runtimes(&i["runtimes"])),
        (
            "Created",
            format!("{} by {}", s(&i["created_at"]), s(&i["created_by"])),
        ),
        (
            "Updated",
            format!("{} by {}", s(&i["updated_at"]), s(&i["updated_by"])),
        ),
    ];
    for (k, v) in rows {
        println!("{:<14} {v}", format!("{k}:"));
    }
}

pub async fn run(global: &Global, cmd: IntegrationCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        IntegrationCmd::Add { name, kind, fields } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("type".into(), json!(kind));
            common(&fields, &mut body);
            if let Some(a) = auth(&fields, None, true)? {
                body.insert("auth".into(), a);
            }
            let created = api
                .call(
                    Method::POST,
                    "/api/v1/integrations",
                    Some(&Value::Object(body)),
                )
                .await?;
            output::print(global.output, &created, show_one);
        }
        IntegrationCmd::List {
            kind,
            name,
            subscription,
            limit,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (k, v) in [
                ("type", kind),
                ("name", name),
                ("subscription", subscription),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", encode(&v)));
                }
            }
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut q = query.clone();
                if let Some(c) = &cursor {
                    q.push(format!("cursor={}", encode(c)));
                }
                let page = api
                    .get(&format!("/api/v1/integrations?{}", q.join("&")))
                    .await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let all = json!({ "items": items });
            output::print(global.output, &all, |v| {
                let rows: Vec<Vec<String>> = v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        vec![
                            s(&i["type"]),
                            s(&i["name"]),
                            s(&i["master_type"]),
                            s(&i["region"]),
                            s(&i["auth"]["mode"]),
                            list(&i["subscriptions"]),
                            s(&i["updated_at"]),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "TYPE",
                        "NAME",
                        "MASTER TYPE",
                        "REGION",
                        "AUTH",
                        "SUBSCRIPTIONS",
                        "UPDATED AT",
                    ],
                    &rows,
                );
            });
        }
        IntegrationCmd::Show { name } => {
            let i = api
                .get(&format!("/api/v1/integrations/{}", encode(&name)))
                .await?;
            output::print(global.output, &i, show_one);
        }
        IntegrationCmd::Edit {
            name,
            rename,
            clear_endpoint,
            clear_registry_id,
            no_subscriptions,
            fields,
        } => {
            let path = format!("/api/v1/integrations/{}", encode(&name));
            let mut body = Map::new();
            if let Some(n) = rename {
                body.insert("name".into(), json!(n));
            }
            common(&fields, &mut body);
            if clear_endpoint {
                body.insert("endpoint".into(), Value::Null);
            }
            if clear_registry_id {
                body.insert("registry_id".into(), Value::Null);
            }
            if no_subscriptions {
                body.insert("subscriptions".into(), json!([]));
            }
            let current = api.get(&path).await?;
            if let Some(a) = auth(&fields, Some(&current["auth"]), false)? {
                body.insert("auth".into(), a);
            }
            if body.is_empty() {
                bail!(
                    "nothing to change: give at least one setting (see berth integration edit --help)"
                );
            }
            let updated = api
                .call(Method::PATCH, &path, Some(&Value::Object(body)))
                .await?;
            output::print(global.output, &updated, show_one);
        }
        IntegrationCmd::Delete { name } => {
            api.call(
                Method::DELETE,
                &format!("/api/v1/integrations/{}", encode(&name)),
                None,
            )
            .await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("No dependency: deleted integration {name}")
            });
        }
        IntegrationCmd::Dependencies { name } => {
            let v = api
                .get(&format!(
                    "/api/v1/integrations/{}/dependencies",
                    encode(&name)
                ))
                .await?;
            output::print(global.output, &v, |v| {
                let deps = v["dependencies"].as_array().cloned().unwrap_or_default();
                if deps.is_empty() {
                    println!("No dependency");
                }
                for d in deps {
                    println!("{}\t{}", output::s(&d["kind"]), output::s(&d["name"]));
                }
            });
        }
    }
    Ok(())
}
