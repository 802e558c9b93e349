//! The page models and their templates. Each page is a struct the server fills from the API's
//! views; a fragment (the list's results, a test report, the delete dialog) renders alone for a
//! script's partial update and inside its page otherwise, from the same template.

use std::collections::BTreeMap;

use askama::Template;
use berth_api::{AuthView, ConnectionTest, IntegrationView, RoleSourceView, RuntimesView};

use crate::assets::{SCRIPT, STYLESHEET};
use crate::forms::IntegrationForm;

/// What every page around its content needs.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub title: String,
    /// Who is signed in; `None` on the sign-in page.
    pub signed_in_as: Option<String>,
    pub is_admin: bool,
    /// This session's token for state-changing forms.
    pub csrf: String,
    /// The navigation entry to mark current: `integrations`, `subscriptions`, …
    pub section: &'static str,
    pub notice: Option<String>,
    pub css: String,
    pub js: String,
}

impl Chrome {
    pub fn new(title: impl Into<String>, section: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            section,
            css: STYLESHEET.href(),
            js: SCRIPT.href(),
            ..Chrome::default()
        }
    }

    /// The navigation: label, link, current. Runtimes and users are an admin's pages only.
    pub fn nav(&self) -> Vec<(&'static str, &'static str, bool)> {
        let mut items = vec![
            ("Integrations", "/integrations", "integrations"),
            ("Subscriptions", "/subscriptions", "subscriptions"),
            ("Projects", "/projects", "projects"),
            ("Resources", "/resources", "resources"),
            ("Images", "/images", "images"),
        ];
        if self.is_admin {
            items.push(("Runtimes", "/runtimes", "runtimes"));
            items.push(("GitOps", "/gitops", "gitops"));
            items.push(("Users", "/users", "users"));
        }
        items
            .into_iter()
            .map(|(label, href, section)| (label, href, section == self.section))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub name: String,
    pub next: String,
}

/// A refusal shown in place of a fragment (a Test connection the server could not run).
#[derive(Template)]
#[template(
    source = "<p class=\"error\" role=\"alert\">{{ message }}</p>",
    ext = "html"
)]
pub struct Refusal {
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
    pub back: String,
    pub back_label: String,
}

/// An integration's last Test connection, as the list shows it.
#[derive(Debug, Clone)]
pub struct LastTest {
    pub ok: bool,
    pub summary: String,
    /// RFC 3339.
    pub tested_at: String,
    pub tested_by: String,
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: String,
    pub name: String,
    pub master_type: String,
    pub region: String,
    pub auth: &'static str,
    pub auth_detail: String,
    pub subscriptions: String,
    pub runtimes: String,
    /// `ok`, `failed` or `untested`.
    pub status: &'static str,
    pub status_detail: String,
    pub updated_at: String,
    pub updated_at_text: String,
    pub updated_by: String,
    /// Its place in the GitOps repository: `synced`, `syncing` or `out-of-sync`, and why; empty
    /// when it has no files there.
    pub sync: &'static str,
    pub sync_detail: String,
}

/// What the store knows of an integration's last GitOps push.
#[derive(Debug, Clone)]
pub struct SyncMark {
    /// `SYNCED`, `SYNCING`, `PENDING` or `OUT_OF_SYNC`.
    pub state: String,
    pub reason: Option<String>,
}

impl Row {
    /// Adds the GitOps column's value.
    pub fn with_sync(mut self, mark: Option<&SyncMark>) -> Row {
        let Some(mark) = mark else {
            return self;
        };
        self.sync = match mark.state.as_str() {
            "SYNCED" => "synced",
            "OUT_OF_SYNC" => "out-of-sync",
            _ => "syncing",
        };
        self.sync_detail = mark.reason.clone().unwrap_or_default();
        self
    }

    pub fn new(view: &IntegrationView, last: Option<&LastTest>) -> Row {
        let (auth, auth_detail) = match &view.auth {
            AuthView::AccessKeys { access_key_id, .. } => ("keys", access_key_id.clone()),
            AuthView::AssumeRole {
                role_arn, source, ..
            } => (
                "role",
                match source {
                    RoleSourceView::Ambient(_) => role_arn.clone(),
                    RoleSourceView::AccessKeys(k) => {
                        format!("{role_arn} from {}", k.access_key_id)
                    }
                },
            ),
            AuthView::Ambient {} => ("ambient", String::new()),
        };
        let (status, status_detail) = match last {
            None => ("untested", String::new()),
            Some(t) => (
                if t.ok { "ok" } else { "failed" },
                format!("{} · {}", short_time(&t.tested_at), t.summary),
            ),
        };
        Row {
            kind: view.kind.clone(),
            name: view.name.clone(),
            master_type: view.master_type.clone(),
            region: view.region.clone(),
            auth,
            auth_detail,
            subscriptions: if view.subscriptions.is_empty() {
                "no subscription".into()
            } else {
                view.subscriptions.join(", ")
            },
            runtimes: match &view.runtimes {
                RuntimesView::All { .. } => "all runtimes".into(),
                RuntimesView::Selected { selected } if selected.is_empty() => String::new(),
                RuntimesView::Selected { selected } => {
                    format!("runtimes: {}", selected.join(", "))
                }
            },
            status,
            status_detail,
            updated_at: view.meta.updated_at.clone(),
            updated_at_text: short_time(&view.meta.updated_at),
            updated_by: view.meta.updated_by.clone(),
            sync: "",
            sync_detail: String::new(),
        }
    }
}

/// `2026-12-03T09:41:07.123Z` as `2026-12-03 09:41 UTC`.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// `1234` as `1,234`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1–50 of 1,234".
pub fn range_text(before: u64, shown: usize, total: u64) -> String {
    if shown == 0 {
        return format!("0 of {}", thousands(total));
    }
    format!(
        "{}–{} of {}",
        thousands(before + 1),
        thousands(before + shown as u64),
        thousands(total)
    )
}

#[derive(Template)]
#[template(path = "integrations_results.html")]
pub struct ListResults<'a> {
    pub rows: &'a [Row],
    /// A GitOps repository is configured: the list has a Sync column.
    pub gitops: bool,
    pub range: String,
    pub filtered: bool,
    pub is_admin: bool,
    pub csrf: String,
    pub first_href: Option<String>,
    /// Set when the previous page is not the first.
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "integrations.html")]
pub struct ListPage {
    pub chrome: Chrome,
    /// The type filter as asked (`ecr` or empty).
    pub kind: String,
    pub name: String,
    /// The rendered [`ListResults`].
    pub results: String,
}

#[derive(Template)]
#[template(path = "new_type.html")]
pub struct NewTypePage {
    pub chrome: Chrome,
    pub unavailable: Vec<&'static str>,
}

impl NewTypePage {
    pub fn new(chrome: Chrome) -> NewTypePage {
        NewTypePage {
            chrome,
            unavailable: vec![
                "Docker Hub",
                "Google Artifact Registry",
                "Azure Container Registry",
                "Quay",
            ],
        }
    }
}

#[derive(Template)]
#[template(path = "integration_form.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub heading: String,
    pub action: String,
    pub save_label: &'static str,
    pub form: IntegrationForm,
    pub auth_choices: Vec<(&'static str, &'static str)>,
    /// Form field → the server's message.
    pub errors: BTreeMap<String, String>,
    pub general_error: Option<String>,
    pub key_id_help: String,
    pub secret_help: String,
    pub regions: Vec<String>,
    pub subscription_options: Vec<String>,
    pub runtime_options: Vec<String>,
    /// A rendered [`TestReport`], or empty.
    pub test: String,
}

impl FormPage {
    /// The page for a new integration (`stored` is `None`) or an edit of `stored`.
    pub fn new(chrome: Chrome, form: IntegrationForm, stored: Option<&IntegrationView>) -> Self {
        let (key_id, secret_set) = match stored.map(|v| &v.auth) {
            Some(AuthView::AccessKeys {
                access_key_id,
                secret_access_key_set,
            }) => (Some(access_key_id.clone()), *secret_access_key_set),
            Some(AuthView::AssumeRole {
                source: RoleSourceView::AccessKeys(k),
                ..
            }) => (Some(k.access_key_id.clone()), k.secret_access_key_set),
            _ => (None, false),
        };
        let (key_id_help, secret_help) = match (stored, key_id) {
            (None, _) => (
                "The AWS access key ID, such as AKIA….".to_owned(),
                "Sealed when saved and never shown again.".to_owned(),
            ),
            (Some(_), Some(id)) => (
                format!("Set ({id}). Leave blank to keep it."),
                if secret_set {
                    "Set. Leave blank to keep it.".to_owned()
                } else {
                    "Not set.".to_owned()
                },
            ),
            (Some(_), None) => ("Not set.".to_owned(), "Not set.".to_owned()),
        };
        FormPage {
            heading: match stored {
                Some(v) => format!("Edit integration {}", v.name),
                None => "Add integration: Amazon ECR".to_owned(),
            },
            action: match stored {
                Some(v) => format!("/integrations/{}/edit", v.name),
                None => "/integrations/new?type=ecr".to_owned(),
            },
            save_label: if stored.is_some() {
                "Save changes"
            } else {
                "Save"
            },
            regions: crate::regions::options(&form.region),
            form,
            auth_choices: vec![
                ("access_keys", "Access keys"),
                ("assume_role", "IAM role"),
                ("ambient", "Berth's own identity"),
            ],
            errors: BTreeMap::new(),
            general_error: None,
            key_id_help,
            secret_help,
            subscription_options: Vec::new(),
            runtime_options: Vec::new(),
            test: String::new(),
            chrome,
        }
    }

    /// The server's message for a form field, if it was refused.
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// A multi-select tall enough to show a few options without scrolling.
    pub fn list_size(&self, options: usize) -> usize {
        options.clamp(2, 6)
    }

    /// The form as the form view models it, from a stored integration (for edit).
    pub fn form_of(view: &IntegrationView) -> IntegrationForm {
        let mut form = IntegrationForm::blank();
        form.name = view.name.clone();
        form.region = view.region.clone();
        form.registry_id = view.registry_id.clone().unwrap_or_default();
        form.endpoint = view.endpoint.clone().unwrap_or_default();
        form.subscriptions = view.subscriptions.clone();
        form.auth_mode = view.auth.mode().to_owned();
        if let AuthView::AssumeRole {
            role_arn,
            external_id,
            source,
            ..
        } = &view.auth
        {
            form.role_arn = role_arn.clone();
            form.external_id = external_id.clone().unwrap_or_default();
            if let RoleSourceView::AccessKeys(_) = source {
                form.role_source = "access_keys".into();
            }
        }
        (form.runtimes_mode, form.runtimes) = match &view.runtimes {
            RuntimesView::All { .. } => ("all".into(), Vec::new()),
            RuntimesView::Selected { selected } if selected.is_empty() => {
                ("none".into(), Vec::new())
            }
            RuntimesView::Selected { selected } => ("selected".into(), selected.clone()),
        };
        form
    }
}

#[derive(Template)]
#[template(path = "test_result.html")]
pub struct TestReport<'a> {
    /// The integration's name, when it is a saved one.
    pub subject: String,
    pub report: &'a ConnectionTest,
}

/// One thing that keeps an integration from being deleted, and where to remove it.
#[derive(Debug, Clone)]
pub struct DependencyItem {
    pub kind: &'static str,
    pub name: String,
    pub remedy: String,
}

impl DependencyItem {
    /// From the API's dependency (`kind` as the API names it).
    pub fn new(kind: &str, name: &str) -> DependencyItem {
        let owner = name.split([':', ' ']).next().unwrap_or(name);
        let (kind, remedy) = match kind {
            "project" => (
                "Project",
                format!(
                    "remove the integration from {owner}'s shippable.yml, then release its dependencies on the Projects page (or with berth project release-dependencies {owner})"
                ),
            ),
            "subscription_image" => (
                "Subscription image",
                format!(
                    "change {owner}'s pre_ci_boot image in shippable.yml, then release the project's dependencies"
                ),
            ),
            "pipeline_resource" => (
                "Pipeline resource",
                format!(
                    "remove the image resource from {owner}'s shippable.yml resources, then release the project's dependencies"
                ),
            ),
            "environment" => (
                "Environment",
                format!(
                    "remove the integration from environment {owner} (DELETE /api/v1/environments/{owner})"
                ),
            ),
            "runtime" => (
                "Runtime",
                "stop sharing it with this runtime on the Edit page".to_owned(),
            ),
            _ => ("Dependency", "remove it, then try again".to_owned()),
        };
        DependencyItem {
            kind,
            name: name.to_owned(),
            remedy,
        }
    }
}

#[derive(Template)]
#[template(path = "delete_body.html")]
pub struct DeleteBody {
    pub name: String,
    pub csrf: String,
    pub dependencies: Vec<DependencyItem>,
    pub error: Option<String>,
}

/// A page whose content is one rendered fragment in a card: the delete dialog or a row's
/// Test connection report, for a browser without the script.
#[derive(Template)]
#[template(path = "card_page.html")]
pub struct CardPage {
    pub chrome: Chrome,
    /// The rendered fragment.
    pub body: String,
}

/// A row of a records page; admins see its actions as buttons.
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub cells: Vec<String>,
    pub actions: Vec<RowAction>,
}

/// A button that posts a form: `Delete`, `Release dependencies`.
#[derive(Debug, Clone)]
pub struct RowAction {
    pub action: String,
    pub label: &'static str,
    /// Sent as the `name` field, for records whose names cannot travel in a path.
    pub name_field: Option<String>,
    pub danger: bool,
}

/// An input of a records page's add form; a select when `options` is not empty.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `password` or `textarea`.
    pub kind: &'static str,
    pub options: Vec<(String, String)>,
}

impl Input {
    pub fn text(name: &'static str, label: &'static str) -> Input {
        Input {
            name,
            label,
            kind: "text",
            options: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AddForm {
    pub heading: &'static str,
    pub action: &'static str,
    pub button: &'static str,
    pub inputs: Vec<Input>,
}

/// Subscriptions, projects, runtimes and users: a table and, for admins, an add form.
#[derive(Template)]
#[template(path = "records.html")]
pub struct RecordsPage {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub intro: &'static str,
    pub empty: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<RecordRow>,
    pub add: Option<AddForm>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(range_text(50, 50, 1234), "51–100 of 1,234");
        assert_eq!(range_text(0, 0, 0), "0 of 0");
    }

    #[test]
    fn markup_is_escaped() {
        let page = ErrorPage {
            chrome: Chrome::new("x", ""),
            heading: "<script>alert(1)</script>".into(),
            message: "a & b".into(),
            back: "/".into(),
            back_label: "Back".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(
            html.contains("alert(1)") && html.contains("a &#38; b") || html.contains("a &amp; b")
        );
        assert!(
            !html.contains("style=\""),
            "no inline style: the CSP forbids it"
        );
    }
}

/// One integration on the GitOps page.
#[derive(Debug, Clone)]
pub struct SyncRow {
    pub integration: String,
    pub status: String,
    /// `synced`, `out-of-sync`, `syncing` or `unknown` (the badge's class).
    pub badge: &'static str,
    pub reason: String,
    pub files: Vec<String>,
}

impl SyncRow {
    pub fn new(v: &berth_api::SyncView) -> SyncRow {
        SyncRow {
            integration: v.integration.clone(),
            status: v.status.clone(),
            badge: match v.status.as_str() {
                "SYNCED" => "synced",
                "OUT_OF_SYNC" => "out-of-sync",
                "SYNCING" => "syncing",
                _ => "untested",
            },
            reason: v.reason.clone().unwrap_or_default(),
            files: v.files.clone(),
        }
    }
}

/// Reported images, filtered.
#[derive(Template)]
#[template(path = "images.html")]
pub struct ImagesPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub items: Vec<berth_api::ImageSummary>,
    pub repository: String,
    pub tag: String,
    pub issue: String,
    pub commit: String,
}

/// One digest: what it links, and its reports.
#[derive(Template)]
#[template(path = "image.html")]
pub struct ImagePage {
    pub chrome: Chrome,
    pub d: berth_api::ImageDetail,
}

/// A resource and its newest versions.
#[derive(Debug, Clone)]
pub struct ResourceSection {
    pub view: berth_api::ImageResourceView,
    pub versions: Vec<berth_api::ImageVersionView>,
}

/// A project's image resources.
#[derive(Template)]
#[template(path = "resources.html")]
pub struct ResourcesPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub projects: Vec<String>,
    pub project: String,
    pub resources: Vec<ResourceSection>,
}

/// The shared configuration repository: settings, sync status, diff, and the form.
#[derive(Template)]
#[template(path = "gitops.html")]
pub struct GitOpsPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    pub settings: Option<berth_api::GitOpsView>,
    pub head: Option<String>,
    pub rows: Vec<SyncRow>,
    pub sync_error: Option<String>,
    pub diff: String,
    /// The form's values (the stored ones, or what was typed).
    pub repo: String,
    pub username: String,
    pub namespace: String,
}
