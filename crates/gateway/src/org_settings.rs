//! The organization's settings: how far self-service goes, for everyone and per group (seed
//! 001's "feature flags"), and the webhook that hears of access requests and decisions. They
//! are stored as one JSON value, changed with an audit row, and read with the grants by every
//! replica; the webhook's URL is sealed at rest (it often carries a secret) and masked in answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Gateway, GatewayError, audit::AdminAction};

/// How far a user may serve themselves on `/mcp/user`. Ordered from the most restrictive: where
/// settings for everyone and for a user's groups differ, the most restrictive applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SelfService {
    /// No self-service tools at all.
    Off,
    /// Searching and listing, but no requests.
    ReadOnly,
    /// Everything, requests included.
    #[default]
    On,
}

impl SelfService {
    /// In plain words, for a refusal.
    pub fn words(self) -> &'static str {
        match self {
            SelfService::Off => "switched off",
            SelfService::ReadOnly => "read-only",
            SelfService::On => "on",
        }
    }
}

/// The settings as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgSettings {
    #[serde(default)]
    pub self_service: SelfService,
    /// By group id: a setting for the group's members.
    #[serde(default)]
    pub groups: BTreeMap<String, SelfService>,
    /// The webhook's URL, sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

impl OrgSettings {
    /// The stored JSON, or the defaults when it is missing or unreadable (logged).
    pub fn parse(json: Option<&str>) -> Self {
        json.map_or_else(Self::default, |json| {
            serde_json::from_str(json).unwrap_or_else(|error| {
                tracing::error!(%error, "the organization's settings are unreadable; using defaults");
                Self::default()
            })
        })
    }

    /// The self-service a member of `groups` gets: the most restrictive that applies.
    pub fn self_service_for<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a String>,
    ) -> SelfService {
        groups
            .into_iter()
            .filter_map(|group| self.groups.get(group).copied())
            .fold(self.self_service, SelfService::min)
    }
}

/// The settings as the API shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub self_service: SelfService,
    /// By group name.
    pub groups: BTreeMap<String, SelfService>,
    /// The webhook's scheme and host, its path masked; `None` when there is none.
    pub webhook_url: Option<String>,
}

/// A change of the settings: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    pub self_service: Option<SelfService>,
    /// By group id or name; `null` removes the group's setting.
    pub groups: Option<BTreeMap<String, Option<SelfService>>>,
    /// `null` removes the webhook; `********` keeps it.
    #[serde(default, deserialize_with = "some")]
    pub webhook_url: Option<Option<String>>,
}

/// Tells a field left out (`None`) from one set to `null` (`Some(None)`).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A webhook URL, checked as an upstream's is: http or https, and not to a link-local, metadata
/// or unspecified address (checked again at every delivery, when the name resolves).
fn webhook_url(text: &str) -> Result<String, GatewayError> {
    let invalid = |why: &str| GatewayError::Invalid(format!("`webhookUrl` {why}"));
    let url = url::Url::parse(text.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be http or https"));
    }
    let host = url.host_str().ok_or_else(|| invalid("has no host"))?;
    switchboard_mcp::net::check_host(host).map_err(|forbidden| invalid(&forbidden.to_string()))?;
    Ok(url.to_string())
}

/// A URL with its path, query and credentials masked: its origin tells which service it reaches.
fn masked(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => format!("{}/********", url.origin().ascii_serialization()),
        Err(_) => crate::model::MASK.to_string(),
    }
}

impl Gateway {
    async fn stored_settings(&self) -> Result<OrgSettings, GatewayError> {
        Ok(OrgSettings::parse(
            self.store().org_settings().await?.as_deref(),
        ))
    }

    /// The webhook's URL, opened; `None` when there is none.
    pub(crate) async fn webhook_url(&self) -> Result<Option<String>, GatewayError> {
        self.stored_settings()
            .await?
            .webhook
            .map(|sealed| self.open_webhook(&sealed))
            .transpose()
    }

    fn open_webhook(&self, sealed: &str) -> Result<String, GatewayError> {
        self.sealer
            .open(sealed)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| GatewayError::Sealed("webhook".into()))
    }

    pub async fn settings_view(&self) -> Result<SettingsView, GatewayError> {
        let stored = self.stored_settings().await?;
        let names: BTreeMap<String, String> = self
            .store()
            .groups()
            .await?
            .into_iter()
            .map(|group| (group.id, group.name))
            .collect();
        let webhook_url = stored.webhook.as_deref().map(|sealed| {
            self.open_webhook(sealed)
                .map_or_else(|_| crate::model::MASK.to_string(), |url| masked(&url))
        });
        Ok(SettingsView {
            self_service: stored.self_service,
            groups: stored
                .groups
                .iter()
                .filter_map(|(id, mode)| Some((names.get(id)?.clone(), *mode)))
                .collect(),
            webhook_url,
        })
    }

    pub async fn update_settings(
        &self,
        body: SettingsBody,
        action: &AdminAction,
    ) -> Result<SettingsView, GatewayError> {
        let mut stored = self.stored_settings().await?;
        if let Some(mode) = body.self_service {
            stored.self_service = mode;
        }
        for (group, mode) in body.groups.unwrap_or_default() {
            let found = self
                .store()
                .group(&group)
                .await?
                .ok_or_else(|| GatewayError::NotFound(format!("group {group}")))?;
            match mode {
                Some(mode) => stored.groups.insert(found.id, mode),
                None => stored.groups.remove(&found.id),
            };
        }
        match body.webhook_url {
            None => {}
            Some(None) => stored.webhook = None,
            Some(Some(url)) if url == crate::model::MASK || url.ends_with("/********") => {}
            Some(Some(url)) => {
                let url = webhook_url(&url)?;
                stored.webhook = Some(self.sealer.seal(url.as_bytes()));
            }
        }
        let json = serde_json::to_string(&stored)
            .map_err(|error| GatewayError::Invalid(error.to_string()))?;
        self.store()
            .set_org_settings(&json, &action.done(""))
            .await?;
        self.access_changed().await?;
        self.settings_view().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_restrictive_setting_applies() {
        let settings = OrgSettings {
            self_service: SelfService::On,
            groups: BTreeMap::from([
                ("contractors".to_string(), SelfService::Off),
                ("interns".to_string(), SelfService::ReadOnly),
            ]),
            webhook: None,
        };
        let groups = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(settings.self_service_for(&groups(&[])), SelfService::On);
        assert_eq!(
            settings.self_service_for(&groups(&["interns"])),
            SelfService::ReadOnly
        );
        assert_eq!(
            settings.self_service_for(&groups(&["interns", "contractors"])),
            SelfService::Off
        );
        let everyone_read_only = OrgSettings {
            self_service: SelfService::ReadOnly,
            ..settings
        };
        assert_eq!(
            everyone_read_only.self_service_for(&groups(&["eng"])),
            SelfService::ReadOnly
        );
    }

    #[test]
    fn a_webhook_url_is_checked_and_masked() {
        assert!(webhook_url("https://hooks.example.com/T0/B0/secret").is_ok());
        for bad in [
            "ftp://hooks.example.com/x",
            "not a url",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/x",
            "http://0.0.0.0/x",
        ] {
            assert!(webhook_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            masked("https://user:pw@hooks.example.com/T0/B0/secret?x=1"),
            "https://hooks.example.com/********"
        );
    }
}
