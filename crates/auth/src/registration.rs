//! Dynamic client registration (RFC 7591), deprecated by the 2026-07-28 revision in favour of
//! metadata documents but still what Gemini CLI and older clients use.

use switchboard_store::{ClientRow, Store};

use crate::{
    OAuthError,
    client::acceptable_redirects,
    secret::{hash_credential, now_ms, random_credential},
};

#[derive(serde::Deserialize)]
struct Metadata {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    application_type: Option<String>,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(400, "invalid_client_metadata", description)
}

/// Validates the client's metadata, stores the client, and answers with its registration.
pub(crate) async fn register(
    store: &Store,
    metadata: &serde_json::Value,
) -> Result<serde_json::Value, OAuthError> {
    let metadata: Metadata = serde_json::from_value(metadata.clone())
        .map_err(|_| invalid("the metadata is not a JSON object of RFC 7591's fields"))?;
    if !acceptable_redirects(&metadata.redirect_uris) {
        return Err(OAuthError::new(
            400,
            "invalid_redirect_uri",
            "redirect_uris must list https URIs, http URIs of a loopback host, or app URIs",
        ));
    }
    let auth_method = metadata
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(
        auth_method.as_str(),
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return Err(invalid(
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        ));
    }
    let grant_types = metadata
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if !grant_types
        .iter()
        .all(|grant| matches!(grant.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(invalid(
            "grant_types may be authorization_code and refresh_token",
        ));
    }
    let response_types = metadata
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|kind| kind != "code") {
        return Err(invalid("response_types may only be code"));
    }
    let application_type = metadata.application_type.unwrap_or_else(|| "web".into());
    if !matches!(application_type.as_str(), "web" | "native") {
        return Err(invalid("application_type must be web or native"));
    }
    let name: String = metadata
        .client_name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "An unnamed client".into())
        .chars()
        .take(100)
        .collect();
    let secret = (auth_method != "none").then(|| random_credential("sbcs_"));
    let now = now_ms();
    let row = ClientRow {
        id: random_credential("sbci_"),
        name,
        redirect_uris: metadata.redirect_uris,
        secret_hash: secret.as_deref().map(hash_credential),
        auth_method,
        application_type,
        created_at: now,
    };
    store.insert_client(&row).await.map_err(|error| {
        tracing::error!(%error, "cannot store a registered client");
        OAuthError::new(500, "server_error", "the registration could not be stored")
    })?;
    let mut answer = serde_json::json!({
        "client_id": row.id,
        "client_id_issued_at": now / 1000,
        "client_name": row.name,
        "redirect_uris": row.redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": row.auth_method,
        "application_type": row.application_type,
    });
    if let Some(secret) = secret {
        answer["client_secret"] = secret.into();
        answer["client_secret_expires_at"] = 0.into();
    }
    Ok(answer)
}
