//! `berth integration add|list|show|edit|test|delete|dependencies`.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use berth_api::{
    AccessKeysInput, AuthInput, AuthView, ConnectionTest, Dependencies, IntegrationInput,
    IntegrationPage, IntegrationPatch, IntegrationView, RoleSourceInput, RoleSourceView,
    RuntimeScopeInput, RuntimesView,
};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

use crate::cli::{AuthMode, Global, IntegrationCmd, IntegrationFields, RoleSource};
use crate::client::{Api, encode};
use crate::output::{self, list, or_dash};

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

fn secret_text(value: Option<String>) -> Option<SecretString> {
    value.map(SecretString::from)
}

/// The role settings stored now, when editing an `assume_role` integration.
struct CurrentRole<'a> {
    role_arn: &'a str,
    external_id: Option<&'a str>,
    session_name: Option<&'a str>,
    from_keys: bool,
}

fn current_role(current: Option<&AuthView>) -> Option<CurrentRole<'_>> {
    match current? {
        AuthView::AssumeRole {
            role_arn,
            external_id,
            session_name,
            source,
        } => Some(CurrentRole {
            role_arn,
            external_id: external_id.as_deref(),
            session_name: session_name.as_deref(),
            from_keys: matches!(source, RoleSourceView::AccessKeys(_)),
        }),
        _ => None,
    }
}

fn touches_auth(fields: &IntegrationFields) -> bool {
    fields.auth.is_some()
        || fields.access_key_id.is_some()
        || fields.secret_access_key_file.is_some()
        || fields.secret_access_key_stdin
        || fields.secret_access_key.is_some()
        || fields.role_arn.is_some()
        || fields.external_id.is_some()
        || fields.session_name.is_some()
        || fields.role_source.is_some()
}

fn mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::AccessKeys => "access_keys",
        AuthMode::AssumeRole => "assume_role",
        AuthMode::Ambient => "ambient",
    }
}

/// Builds the `auth` object. `current` is the stored auth when editing, so flags not given keep
/// their stored values.
fn auth(
    fields: &IntegrationFields,
    current: Option<&AuthView>,
    adding: bool,
) -> anyhow::Result<Option<AuthInput>> {
    if !adding && !touches_auth(fields) {
        return Ok(None);
    }
    let current_mode = current.map(AuthView::mode);
    let mode = match (fields.auth, current_mode) {
        (Some(m), _) => m,
        (None, Some("assume_role")) => AuthMode::AssumeRole,
        (None, Some("ambient")) if fields.role_arn.is_some() => AuthMode::AssumeRole,
        (None, Some("ambient")) => AuthMode::Ambient,
        (None, _) if fields.role_arn.is_some() => AuthMode::AssumeRole,
        (None, _) => AuthMode::AccessKeys,
    };
    let mode_changed = current_mode.is_some_and(|m| m != mode_name(mode));
    // A secret is asked for when new keys are being set up, not when other fields change.
    let needs_secret = |keys_before: bool| adding || fields.access_key_id.is_some() || !keys_before;
    let key_id = || secret_text(fields.access_key_id.clone());
    Ok(Some(match mode {
        AuthMode::AccessKeys => {
            let had_keys = current_mode == Some("access_keys");
            AuthInput::AccessKeys {
                access_key_id: key_id(),
                secret_access_key: secret_text(secret(
                    fields,
                    needs_secret(had_keys && !mode_changed),
                )?),
            }
        }
        AuthMode::AssumeRole => {
            let cur = current_role(current);
            let role_arn = fields
                .role_arn
                .clone()
                .or_else(|| cur.as_ref().map(|c| c.role_arn.to_owned()))
                .context("--role-arn is required with --auth assume-role")?;
            let keep = |flag: &Option<String>, stored: Option<&str>| {
                flag.clone().or_else(|| stored.map(str::to_owned))
            };
            let cur_source_keys = cur.as_ref().is_some_and(|c| c.from_keys);
            let source = fields.role_source.unwrap_or(
                if cur_source_keys || fields.access_key_id.is_some() {
                    RoleSource::AccessKeys
                } else {
                    RoleSource::Ambient
                },
            );
            let source = match source {
                RoleSource::Ambient => RoleSourceInput::Keyword("ambient".into()),
                RoleSource::AccessKeys => RoleSourceInput::AccessKeys(AccessKeysInput {
                    access_key_id: key_id(),
                    secret_access_key: secret_text(secret(fields, needs_secret(cur_source_keys))?),
                }),
            };
            AuthInput::AssumeRole {
                external_id: keep(
                    &fields.external_id,
                    cur.as_ref().and_then(|c| c.external_id),
                ),
                session_name: keep(
                    &fields.session_name,
                    cur.as_ref().and_then(|c| c.session_name),
                ),
                role_arn,
                source: Some(source),
            }
        }
        AuthMode::Ambient => AuthInput::Ambient {},
    }))
}

fn runtimes_input(fields: &IntegrationFields) -> Option<RuntimeScopeInput> {
    if fields.all_runtimes {
        Some(RuntimeScopeInput {
            all: Some(true),
            selected: None,
        })
    } else if !fields.runtimes.is_empty() {
        Some(RuntimeScopeInput {
            all: None,
            selected: Some(fields.runtimes.clone()),
        })
    } else {
        None
    }
}

fn key_summary(access_key_id: &str, secret_set: bool) -> String {
    format!(
        "key {access_key_id}, secret {}",
        if secret_set { "set" } else { "missing" }
    )
}

fn auth_summary(auth: &AuthView) -> String {
    match auth {
        AuthView::AccessKeys {
            access_key_id,
            secret_access_key_set,
        } => format!(
            "access_keys ({})",
            key_summary(access_key_id, *secret_access_key_set)
        ),
        AuthView::AssumeRole {
            role_arn,
            external_id,
            source,
            ..
        } => format!(
            "assume_role {role_arn} from {}{}",
            match source {
                RoleSourceView::AccessKeys(k) =>
                    key_summary(&k.access_key_id, k.secret_access_key_set),
                RoleSourceView::Ambient(_) => "ambient credentials".into(),
            },
            external_id
                .as_deref()
                .map(|e| format!(", external id {e}"))
                .unwrap_or_default()
        ),
        AuthView::Ambient {} => "ambient".into(),
    }
}

fn runtimes(v: &RuntimesView) -> String {
    match v {
        RuntimesView::All { .. } => "all".into(),
        RuntimesView::Selected { selected } => list(selected),
    }
}

fn show_one(i: &IntegrationView) {
    let rows = [
        ("Name", i.name.clone()),
        ("Type", format!("{} ({})", i.kind, i.master_type)),
        ("Region", i.region.clone()),
        ("Auth", auth_summary(&i.auth)),
        ("Registry id", or_dash(i.registry_id.as_deref())),
        ("Endpoint", or_dash(i.endpoint.as_deref())),
        (
            "Jobs get",
            if i.export_long_lived_keys {
                "the long-lived access keys (export_long_lived_keys on)".to_owned()
            } else {
                "short-lived STS sessions".to_owned()
            },
        ),
        ("Subscriptions", list(&i.subscriptions)),
        ("Runtimes", runtimes(&i.runtimes)),
        (
            "Created",
            format!("{} by {}", i.meta.created_at, i.meta.created_by),
        ),
        (
            "Updated",
            format!("{} by {}", i.meta.updated_at, i.meta.updated_by),
        ),
    ];
    for (k, v) in rows {
        println!("{:<14} {v}", format!("{k}:"));
    }
}

fn list_rows(items: &[IntegrationView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.kind.clone(),
                i.name.clone(),
                i.master_type.clone(),
                i.region.clone(),
                i.auth.mode().to_owned(),
                list(&i.subscriptions),
                i.meta.updated_at.clone(),
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
}

/// Every page of the list, following `next_cursor`.
async fn list_all(api: &Api, query: Vec<String>) -> anyhow::Result<Vec<IntegrationView>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(format!("cursor={}", encode(c)));
        }
        let page: IntegrationPage = api
            .get(&format!("/api/v1/integrations?{}", q.join("&")))
            .await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(items),
        }
    }
}

pub async fn run(global: &Global, cmd: IntegrationCmd) -> anyhow::Result<()> {
    let api = Api::new(global)?;
    match cmd {
        IntegrationCmd::Add { name, kind, fields } => {
            let body = IntegrationInput {
                name,
                kind,
                region: fields.region.clone(),
                auth: auth(&fields, None, true)?,
                registry_id: fields.registry_id.clone(),
                endpoint: fields.endpoint.clone(),
                subscriptions: fields.subscriptions.clone(),
                runtimes: runtimes_input(&fields),
                export_long_lived_keys: fields.export_long_lived_keys,
            };
            let created: IntegrationView = api
                .call(Method::POST, "/api/v1/integrations", Some(&body))
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
            let all = IntegrationPage {
                items: list_all(&api, query).await?,
                next_cursor: None,
            };
            output::print(global.output, &all, |v| list_rows(&v.items));
        }
        IntegrationCmd::Show { name } => {
            let i: IntegrationView = api
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
            let changes = Changes {
                rename,
                clear_endpoint,
                clear_registry_id,
                no_subscriptions,
            };
            let updated = edit(&api, &name, changes, &fields).await?;
            output::print(global.output, &updated, show_one);
        }
        IntegrationCmd::Test { name, region } => {
            let body = berth_api::RegionOptions { region };
            let path = format!("/api/v1/integrations/{}/test", encode(&name));
            let report: ConnectionTest = api.call(Method::POST, &path, Some(&body)).await?;
            output::print(global.output, &report, print_test);
            if !report.ok {
                bail!("Test connection of {name} failed");
            }
        }
        IntegrationCmd::Delete { name } => {
            api.delete(&format!("/api/v1/integrations/{}", encode(&name)))
                .await?;
            output::print(global.output, &json!({"deleted": name}), |_| {
                println!("No dependency: deleted integration {name}")
            });
        }
        IntegrationCmd::Dependencies { name } => {
            let v: Dependencies = api
                .get(&format!(
                    "/api/v1/integrations/{}/dependencies",
                    encode(&name)
                ))
                .await?;
            output::print(global.output, &v, |v| {
                if v.dependencies.is_empty() {
                    println!("No dependency");
                }
                for d in &v.dependencies {
                    println!("{}\t{}", d.kind, d.name);
                }
            });
        }
    }
    Ok(())
}

/// One line per step (`ok  credentials  AWS credentials resolved  12 ms`), a failed step's
/// diagnosis and hint indented below it.
fn print_test(report: &ConnectionTest) {
    for s in &report.steps {
        let step = match &s.subject {
            Some(subject) => format!("{} ({subject})", s.step),
            None => s.step.clone(),
        };
        println!("{:<8}{step:<24}{}  {} ms", s.status, s.detail, s.millis);
        if let Some(d) = &s.diagnosis {
            println!("        diagnosis: {d}");
        }
        if let Some(h) = &s.hint {
            println!("        hint: {h}");
        }
    }
}

/// `berth integration edit`'s flags that are not integration settings.
struct Changes {
    rename: Option<String>,
    clear_endpoint: bool,
    clear_registry_id: bool,
    no_subscriptions: bool,
}

/// Patches the integration with what the flags change, keeping the stored auth's other parts.
async fn edit(
    api: &Api,
    name: &str,
    changes: Changes,
    fields: &IntegrationFields,
) -> anyhow::Result<IntegrationView> {
    let path = format!("/api/v1/integrations/{}", encode(name));
    let current: IntegrationView = api.get(&path).await?;
    let body = IntegrationPatch {
        name: changes.rename,
        kind: None,
        region: fields.region.clone(),
        auth: auth(fields, Some(&current.auth), false)?,
        registry_id: cleared(changes.clear_registry_id, &fields.registry_id),
        endpoint: cleared(changes.clear_endpoint, &fields.endpoint),
        subscriptions: if changes.no_subscriptions {
            Some(Some(Vec::new()))
        } else {
            (!fields.subscriptions.is_empty()).then(|| Some(fields.subscriptions.clone()))
        },
        runtimes: runtimes_input(fields),
        export_long_lived_keys: fields.export_long_lived_keys,
    };
    if serde_json::to_value(&body)?
        .as_object()
        .is_none_or(|o| o.is_empty())
    {
        bail!("nothing to change: give at least one setting (see berth integration edit --help)");
    }
    api.call(Method::PATCH, &path, Some(&body)).await
}

/// A patch field: `null` to clear, the new value, or absent.
fn cleared(clear: bool, value: &Option<String>) -> Option<Option<String>> {
    match (clear, value) {
        (true, _) => Some(None),
        (false, Some(v)) => Some(Some(v.clone())),
        (false, None) => None,
    }
}
