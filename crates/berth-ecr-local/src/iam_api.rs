//! IAM, query protocol with XML responses: `GetRole` only — what a caller needs to read a role's
//! trust policy (`AssumeRolePolicyDocument`, URL-encoded as IAM returns it), rendered from the
//! trust `iam.toml` gives the role, so the policy shown is the one AssumeRole enforces.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::control::Caller;
use crate::error::{AwsError, xml_escape};
use crate::iam::Role;
use crate::{State, ids};

pub const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

pub async fn handle(state: &State, caller: &Caller, body: &[u8]) -> Response {
    match run(state, caller, body) {
        Ok(r) => r,
        Err(e) => e.xml_in(NS),
    }
}

fn run(state: &State, caller: &Caller, body: &[u8]) -> Result<Response, AwsError> {
    let params = crate::sts::form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("Action") {
        Some("GetRole") => {}
        Some(other) => {
            return Err(AwsError::new(
                "InvalidAction",
                format!("Could not find operation {other} for version 2010-05-08"),
            ));
        }
        None => return Err(AwsError::new("MissingAction", "Missing Action")),
    }
    let name = get("RoleName").ok_or_else(|| {
        AwsError::new(
            "ValidationError",
            "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let arn = format!("arn:aws:iam::{}:role/{name}", state.iam.account_id);
    if !caller.identity.policy.allows("iam:GetRole", None) {
        return Err(AwsError::new(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: iam:GetRole on resource: {arn}",
                caller.identity.arn
            ),
        )
        .status(StatusCode::FORBIDDEN));
    }
    let role = state.iam.role_by_name(name).ok_or_else(|| {
        AwsError::new(
            "NoSuchEntity",
            format!("The role with name {name} cannot be found."),
        )
        .status(StatusCode::NOT_FOUND)
    })?;
    let document = berth_core::percent_encode(&trust_policy(state, role).to_string());
    let result = format!(
        "<Role><Path>/</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn><CreateDate>{}</CreateDate><AssumeRolePolicyDocument>{document}</AssumeRolePolicyDocument><MaxSessionDuration>43200</MaxSessionDuration></Role>",
        xml_escape(name),
        role_id(&arn),
        xml_escape(&arn),
        state.iam_loaded_at,
    );
    let body = format!(
        "<GetRoleResponse xmlns=\"{NS}\"><GetRoleResult>{result}</GetRoleResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetRoleResponse>",
        ids::request_id()
    );
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response())
}

/// The role's trust as an IAM policy document: one statement for the AWS principals (with the
/// external id condition AssumeRole checks) and one per web identity provider.
fn trust_policy(state: &State, role: &Role) -> Value {
    let providers: Vec<String> = state
        .iam
        .oidc_providers
        .iter()
        .map(|p| p.arn(&state.iam.account_id))
        .collect();
    let mut statements = Vec::new();
    let aws: Vec<&String> = role
        .trust
        .iter()
        .filter(|p| !providers.contains(p))
        .collect();
    if !aws.is_empty() {
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": {"AWS": if aws.len() == 1 { json!(aws[0]) } else { json!(aws) }},
            "Action": "sts:AssumeRole",
        });
        if let Some(external_id) = &role.external_id {
            statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": external_id}});
        }
        statements.push(statement);
    }
    for arn in providers.iter().filter(|arn| role.trust.contains(arn)) {
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
        });
        if !role.web_identity_subjects.is_empty() {
            let host = arn.split_once(":oidc-provider/").map_or("", |(_, h)| h);
            statement["Condition"] =
                json!({"StringLike": {format!("{host}:sub"): role.web_identity_subjects}});
        }
        statements.push(statement);
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A stable `AROA…` id for the role, as IAM gives each role one.
fn role_id(arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = crate::storage::sha256_hex(arn.as_bytes());
    let tail: String = digest
        .bytes()
        .take(17)
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("AROA{tail}")
}
