//! Submitted forms: the fields as sent, and the integration form turned into the JSON the API
//! takes (`IntegrationInput` to create, `IntegrationPatch` to edit), so a page submits through
//! exactly the validation an API client meets.

use serde_json::{Map, Value, json};

/// The fields of an `application/x-www-form-urlencoded` body, in order; a field may repeat
/// (a multi-select).
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// The integration form's values that may be shown again after an error: everything but the
/// secrets.
#[derive(Debug, Clone, Default)]
pub struct IntegrationForm {
    pub name: String,
    /// `access_keys`, `assume_role` or `ambient`.
    pub auth_mode: String,
    /// The access key id is shown again (it is not secret alone, but it is masked when stored).
    pub access_key_id: String,
    pub role_arn: String,
    pub external_id: String,
    /// `ambient` or `access_keys`: what assumes the role.
    pub role_source: String,
    pub region: String,
    pub registry_id: String,
    pub endpoint: String,
    pub subscriptions: Vec<String>,
    /// `none`, `all` or `selected`.
    pub runtimes_mode: String,
    pub runtimes: Vec<String>,
}

impl IntegrationForm {
    pub fn from_fields(f: &Fields) -> IntegrationForm {
        IntegrationForm {
            name: f.get("name").to_owned(),
            auth_mode: or(f.get("auth_mode"), "access_keys"),
            access_key_id: String::new(),
            role_arn: f.get("role_arn").to_owned(),
            external_id: f.get("external_id").to_owned(),
            role_source: or(f.get("role_source"), "ambient"),
            region: or(f.get("region"), "us-east-1"),
            registry_id: f.get("registry_id").to_owned(),
            endpoint: f.get("endpoint").to_owned(),
            subscriptions: f.all("subscriptions"),
            runtimes_mode: or(f.get("runtimes_mode"), "none"),
            runtimes: f.all("runtimes"),
        }
    }

    /// The defaults of a new integration.
    pub fn blank() -> IntegrationForm {
        IntegrationForm {
            auth_mode: "access_keys".into(),
            role_source: "ambient".into(),
            region: "us-east-1".into(),
            runtimes_mode: "none".into(),
            ..IntegrationForm::default()
        }
    }
}

fn or(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_owned()
}

/// The secrets as typed; blank ones are left out (on edit: kept as stored).
fn keys(f: &Fields) -> Map<String, Value> {
    let mut keys = Map::new();
    for field in ["access_key_id", "secret_access_key"] {
        let value = f.get(field);
        if !value.is_empty() {
            keys.insert(field.into(), value.into());
        }
    }
    keys
}

fn auth(f: &Fields, form: &IntegrationForm) -> Value {
    match form.auth_mode.as_str() {
        "assume_role" => {
            let mut auth = Map::new();
            auth.insert("mode".into(), "assume_role".into());
            auth.insert("role_arn".into(), form.role_arn.clone().into());
            if !form.external_id.is_empty() {
                auth.insert("external_id".into(), form.external_id.clone().into());
            }
            auth.insert(
                "source".into(),
                if form.role_source == "access_keys" {
                    Value::Object(keys(f))
                } else {
                    "ambient".into()
                },
            );
            Value::Object(auth)
        }
        "access_keys" => {
            let mut auth = keys(f);
            auth.insert("mode".into(), "access_keys".into());
            Value::Object(auth)
        }
        other => json!({ "mode": other }),
    }
}

fn runtimes(form: &IntegrationForm) -> Value {
    match form.runtimes_mode.as_str() {
        "all" => json!({ "all": true }),
        "selected" => json!({ "selected": form.runtimes }),
        _ => json!({ "selected": [] }),
    }
}

fn optional(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        value.into()
    }
}

/// `POST /api/v1/integrations`'s body from the form.
pub fn create_input(f: &Fields) -> Value {
    let form = IntegrationForm::from_fields(f);
    let mut body = json!({
        "name": form.name,
        "type": "ecr",
        "region": form.region,
        "auth": auth(f, &form),
        "subscriptions": form.subscriptions,
        "runtimes": runtimes(&form),
    });
    for (field, value) in [
        ("registry_id", &form.registry_id),
        ("endpoint", &form.endpoint),
    ] {
        if !value.is_empty() {
            body[field] = value.as_str().into();
        }
    }
    body
}

/// `PATCH /api/v1/integrations/{name}`'s body from the edit form: blank secrets are kept,
/// blank registry id and endpoint are cleared.
pub fn patch_input(f: &Fields) -> Value {
    let form = IntegrationForm::from_fields(f);
    json!({
        "name": form.name,
        "region": form.region,
        "auth": auth(f, &form),
        "registry_id": optional(&form.registry_id),
        "endpoint": optional(&form.endpoint),
        "subscriptions": form.subscriptions,
        "runtimes": runtimes(&form),
    })
}

/// The form field an API error names: `auth.source.access_key_id` is the `access_key_id`
/// field, `subscriptions[1]` the `subscriptions` select, `runtimes.selected[0]` the runtimes
/// picker.
pub fn form_field(api_field: &str) -> &str {
    let last = api_field.rsplit('.').next().unwrap_or(api_field);
    let last = last.split('[').next().unwrap_or(last);
    match last {
        "selected" | "all" => "runtimes",
        "mode" if api_field.starts_with("auth") => "auth_mode",
        "source" => "role_source",
        "auth" => "auth_mode",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_apis_input_and_blank_secrets_are_left_out() {
        let f = Fields::parse(
            b"name=ecr-prod&auth_mode=assume_role&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci\
              &role_source=access_keys&access_key_id=AKIAEXAMPLE&secret_access_key=\
              &region=eu-west-1&subscriptions=acme&subscriptions=globex&runtimes_mode=selected&runtimes=prod",
        );
        let body = create_input(&f);
        assert_eq!(
            body["auth"]["source"],
            json!({"access_key_id": "AKIAEXAMPLE"})
        );
        assert_eq!(body["subscriptions"], json!(["acme", "globex"]));
        assert_eq!(body["runtimes"], json!({"selected": ["prod"]}));
        assert!(body.get("endpoint").is_none());
        let patch = patch_input(&f);
        assert_eq!(patch["endpoint"], Value::Null);
        let form = IntegrationForm::from_fields(&f);
        assert_eq!(form.access_key_id, "", "typed keys are never shown again");
    }

    #[test]
    fn api_fields_map_to_form_fields() {
        assert_eq!(
            form_field("auth.source.secret_access_key"),
            "secret_access_key"
        );
        assert_eq!(form_field("subscriptions[1]"), "subscriptions");
        assert_eq!(form_field("runtimes.selected[0]"), "runtimes");
        assert_eq!(form_field("auth.mode"), "auth_mode");
        assert_eq!(form_field("name"), "name");
    }
}
