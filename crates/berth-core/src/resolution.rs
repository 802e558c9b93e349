//! Shippable resolution, the product's central rule, as a pure function: which hub entries of a
//! `shippable.yml` apply to a build's branch or tag, whether the project's subscription was given
//! each integration they name, that the types match, which region and registry host each entry
//! means, which integration serves the `pre_ci_boot` image, and which dependencies to record.
//! Errors carry Shippable's exact texts and the entry's line. The server loads what the file
//! names, calls [`resolve`], records [`Resolution::dependencies`] and renders the result.

use crate::shippable::{BranchRule, HubEntry, ShippableYml};
use crate::{EcrConfig, ImageRef, Integration, IntegrationConfig, IntegrationType, Name};

/// Shippable's default when a hub entry names no region.
pub const DEFAULT_CI_REGION: &str = "us-east-1";

/// What uses an integration, as recorded against it (delete is refused while any exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DependencyKind {
    /// A project whose build named the integration in `integrations: hub:`.
    Project,
    /// A project's custom CI image (`build: pre_ci_boot:`) served by the integration.
    SubscriptionImage,
    /// A pipeline resource (`resources:`) of a project.
    PipelineResource,
    /// An environment created over the integration.
    Environment,
    /// A GitOps runtime the integration is shared with.
    Runtime,
}

impl DependencyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyKind::Project => "project",
            DependencyKind::SubscriptionImage => "subscription_image",
            DependencyKind::PipelineResource => "pipeline_resource",
            DependencyKind::Environment => "environment",
            DependencyKind::Runtime => "runtime",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            DependencyKind::Project,
            DependencyKind::SubscriptionImage,
            DependencyKind::PipelineResource,
            DependencyKind::Environment,
            DependencyKind::Runtime,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

/// One dependency a project's build records: `name` says who depends, in the form its kind uses
/// (the form `GET …/dependencies` shows). The store keeps the project itself as the owner, so
/// deleting the project deletes these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub integration_id: String,
    pub kind: DependencyKind,
    pub name: String,
}

impl Dependency {
    /// The project's build names the integration in `integrations: hub:`.
    pub fn project(integration_id: &str, project: &str) -> Self {
        Self::of(integration_id, DependencyKind::Project, project.to_owned())
    }

    /// The project's custom CI image is pulled through the integration.
    pub fn boot_image(integration_id: &str, project: &str, image: &str) -> Self {
        Self::of(
            integration_id,
            DependencyKind::SubscriptionImage,
            format!("{project} pre_ci_boot {image}"),
        )
    }

    /// One of the project's pipeline resources uses the integration.
    pub fn pipeline_resource(integration_id: &str, project: &str, resource: &str) -> Self {
        Self::of(
            integration_id,
            DependencyKind::PipelineResource,
            format!("{project}:{resource}"),
        )
    }

    fn of(integration_id: &str, kind: DependencyKind, name: String) -> Self {
        Dependency {
            integration_id: integration_id.to_owned(),
            kind,
            name,
        }
    }
}

/// A hub entry that applies to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub integration: Name,
    pub integration_id: String,
    pub kind: IntegrationType,
    pub region: String,
    /// The registry host the entry serves, when it can be known before a token.
    pub registry: Option<String>,
    pub agent_only: bool,
}

/// A hub entry whose branch rule excludes the build, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub integration: String,
    pub reason: String,
}

/// The `pre_ci_boot` image and the applied integration that serves its registry, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    pub image: String,
    pub registry: String,
    pub served_by: Option<(Name, String)>,
    pub pull: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub applied: Vec<Applied>,
    pub skipped: Vec<Skipped>,
    pub boot_image: Option<BootImage>,
}

impl Resolution {
    /// What the build depends on: the project on each applied integration, and its custom CI
    /// image on the integration that serves it.
    pub fn dependencies(&self, project: &str) -> Vec<Dependency> {
        let mut out: Vec<Dependency> = self
            .applied
            .iter()
            .map(|a| Dependency::project(&a.integration_id, project))
            .collect();
        if let Some(BootImage {
            image,
            served_by: Some((_, id)),
            ..
        }) = &self.boot_image
        {
            out.push(Dependency::boot_image(id, project, image));
        }
        out
    }
}

/// Why a build's hub entries cannot be resolved, in Shippable's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "Integration name specified in yml does not match integrations present in Subscription settings: {name}"
    )]
    NotAssigned { name: String, line: Option<usize> },
    #[error("Integration '{name}' is of type {actual}, but the yml names it as type {named}")]
    WrongType {
        name: String,
        actual: &'static str,
        named: &'static str,
        line: Option<usize>,
    },
    #[error("build.pre_ci_boot: {0}")]
    BootImage(String),
}

impl ResolveError {
    /// The line of the hub entry at fault, when the file has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ResolveError::NotAssigned { line, .. } | ResolveError::WrongType { line, .. } => *line,
            ResolveError::BootImage(_) => None,
        }
    }
}

fn rule_text(rule: &BranchRule) -> String {
    match rule {
        BranchRule::Only(p) => format!("only [{}]", p.join(", ")),
        BranchRule::Except(p) => format!("except [{}]", p.join(", ")),
    }
}

/// The hub entries that apply to `reference` (a branch or tag), and those skipped with why: the
/// caller loads the integrations the applying ones name before calling [`resolve`].
pub fn applying<'a>(yml: &'a ShippableYml, reference: &str) -> (Vec<&'a HubEntry>, Vec<Skipped>) {
    let mut applying = Vec::new();
    let mut skipped = Vec::new();
    for entry in &yml.hub {
        if entry.applies(reference) {
            applying.push(entry);
        } else {
            let rule = entry.branches.as_ref().map(rule_text).unwrap_or_default();
            skipped.push(Skipped {
                integration: entry.integration_name.clone(),
                reason: format!("'{reference}' does not match branches {rule}"),
            });
        }
    }
    (applying, skipped)
}

/// The registry host an integration serves in `region`, when it can be known before a token.
pub fn registry_host(ecr: &EcrConfig, region: &str) -> Option<String> {
    if let Some(e) = &ecr.endpoint {
        return Some(crate::normalize_host(e));
    }
    let id = ecr.registry_id.as_ref()?;
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("{id}.dkr.ecr.{region}.{suffix}"))
}

fn apply(
    entry: &HubEntry,
    subscription: &Name,
    integrations: &[Integration],
) -> Result<Applied, ResolveError> {
    let named = Name::key_of(&entry.integration_name);
    let integration = integrations
        .iter()
        .find(|i| i.name.key() == named)
        .filter(|i| i.is_assigned_to(subscription))
        .ok_or_else(|| ResolveError::NotAssigned {
            name: entry.integration_name.clone(),
            line: entry.line,
        })?;
    if integration.config.kind() != entry.kind {
        return Err(ResolveError::WrongType {
            name: integration.name.to_string(),
            actual: integration.config.kind().as_str(),
            named: entry.kind.as_str(),
            line: entry.line,
        });
    }
    let IntegrationConfig::Ecr(ecr) = &integration.config;
    let region = entry
        .region
        .clone()
        .unwrap_or_else(|| DEFAULT_CI_REGION.to_owned());
    Ok(Applied {
        integration: integration.name.clone(),
        integration_id: integration.id.clone(),
        kind: integration.config.kind(),
        registry: registry_host(ecr, &region),
        region,
        agent_only: entry.agent_only,
    })
}

fn boot_image(yml: &ShippableYml, applied: &[Applied]) -> Result<Option<BootImage>, ResolveError> {
    let Some(boot) = &yml.pre_ci_boot else {
        return Ok(None);
    };
    let image = format!(
        "{}:{}",
        boot.image_name,
        boot.image_tag.as_deref().unwrap_or("latest")
    );
    let registry = ImageRef::parse(&image)
        .map_err(|e| ResolveError::BootImage(e.to_string()))?
        .registry;
    let served_by = applied
        .iter()
        .find(|a| a.registry.as_deref() == Some(registry.as_str()))
        .map(|a| (a.integration.clone(), a.integration_id.clone()));
    Ok(Some(BootImage {
        image,
        registry,
        served_by,
        pull: boot.pull.unwrap_or(false),
    }))
}

/// Resolves a build: `integrations` are those the applying entries name that exist (in any
/// subscription; assignment is checked here). The first entry that fails decides the error, and
/// nothing is to be recorded then.
pub fn resolve(
    yml: &ShippableYml,
    reference: &str,
    subscription: &Name,
    integrations: &[Integration],
) -> Result<Resolution, ResolveError> {
    let (entries, skipped) = applying(yml, reference);
    let applied = entries
        .into_iter()
        .map(|e| apply(e, subscription, integrations))
        .collect::<Result<Vec<_>, _>>()?;
    let boot_image = boot_image(yml, &applied)?;
    Ok(Resolution {
        applied,
        skipped,
        boot_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shippable;
    use crate::testing::EcrFixture;

    fn integration(name: &str, subscriptions: &[&str], registry_id: Option<&str>) -> Integration {
        EcrFixture::new(name)
            .region("us-west-2")
            .subscriptions(subscriptions)
            .registry_id(registry_id)
            .build()
    }

    const YML: &str = "build:\n  pre_ci_boot:\n    image_name: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ci\n    image_tag: v2\nintegrations:\n  hub:\n    - integrationName: Prod\n      type: ecr\n      region: eu-west-1\n      branches:\n        only: [main]\n    - integrationName: dev\n      type: ecr\n      branches:\n        except: [main]\n";

    #[test]
    fn applies_entries_by_branch_defaults_regions_and_finds_the_boot_images_integration() {
        let yml = shippable::parse(YML).unwrap();
        let acme = Name::parse("s", "ACME").unwrap();
        let found = [
            integration("prod", &["acme"], Some("123456789012")),
            integration("dev", &["acme"], None),
        ];
        let r = resolve(&yml, "main", &acme, &found).unwrap();
        assert_eq!(r.applied.len(), 1);
        assert_eq!(r.applied[0].integration.as_str(), "prod");
        assert_eq!(r.applied[0].region, "eu-west-1");
        assert_eq!(
            r.applied[0].registry.as_deref(),
            Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            r.skipped[0].reason,
            "'main' does not match branches except [main]"
        );
        let boot = r.boot_image.clone().unwrap();
        assert_eq!(boot.served_by.unwrap().1, "id-prod");
        let deps = r.dependencies("acme/web");
        assert_eq!(
            deps.iter()
                .map(|d| (d.kind, d.name.as_str()))
                .collect::<Vec<_>>(),
            [
                (DependencyKind::Project, "acme/web"),
                (
                    DependencyKind::SubscriptionImage,
                    "acme/web pre_ci_boot 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ci:v2"
                )
            ]
        );
        let r = resolve(&yml, "feature/x", &acme, &found).unwrap();
        assert_eq!(r.applied[0].region, DEFAULT_CI_REGION);
        assert!(r.boot_image.unwrap().served_by.is_none());
    }

    #[test]
    fn unassigned_absent_and_mistyped_integrations_are_shippables_errors_with_the_line() {
        let yml = shippable::parse(YML).unwrap();
        let acme = Name::parse("s", "acme").unwrap();
        for (case, found) in [
            ("absent", vec![]),
            (
                "another subscription's",
                vec![integration("prod", &["globex"], None)],
            ),
        ] {
            let e = resolve(&yml, "main", &acme, &found).unwrap_err();
            assert_eq!(
                e.to_string(),
                "Integration name specified in yml does not match integrations present in Subscription settings: Prod",
                "{case}"
            );
            assert_eq!(e.line(), Some(7), "{case}");
        }
        assert_eq!(
            DependencyKind::parse("pipeline_resource"),
            Some(DependencyKind::PipelineResource)
        );
        assert_eq!(DependencyKind::parse("nonsense"), None);
    }
}
