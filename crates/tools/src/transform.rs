//! The registry's transforms: pure functions, no IO, so each is covered by a table of cases.

use serde_json::{Map, Value};

use switchboard_mcp::CallContext;

/// The longest name both MCP clients and OpenAI function calling accept.
pub const MAX_NAME_LEN: usize = 64;

/// Why a remote tool is not imported, or `None` when it is.
pub fn filter_reason(
    remote_name: &str,
    allow: Option<&[String]>,
    deny: &[String],
    deny_prefix: Option<&str>,
) -> Option<String> {
    if let Some(prefix) = deny_prefix.filter(|p| !p.is_empty())
        && remote_name.starts_with(prefix)
    {
        return Some(format!("Denied by denyToolPrefix ({prefix})"));
    }
    if deny.iter().any(|d| d == remote_name) {
        return Some("Denied by denyTools".into());
    }
    if let Some(allow) = allow
        && !allow.iter().any(|a| a == remote_name)
    {
        return Some("Not in allowTools".into());
    }
    None
}

/// Whether a name is valid as an MCP tool name and an OpenAI function name: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A valid name for `name`, the same every time: invalid characters become `_`, and a name too
/// long keeps its head and gains a hash of the whole, so two long names stay apart.
pub fn sanitize_name(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        clean.push_str("tool");
    }
    if clean.len() > MAX_NAME_LEN {
        let hash = format!("{:08x}", fnv1a(name.as_bytes()) as u32);
        clean.truncate(MAX_NAME_LEN - hash.len() - 1);
        clean.push('_');
        clean.push_str(&hash);
    }
    clean
}

/// FNV-1a: a stable hash, unlike std's, whose output may change between Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The schema the model sees: pinned parameters are removed from `properties` and `required`.
pub fn hide_pinned(schema: &Map<String, Value>, pinned: &[&str]) -> Map<String, Value> {
    let mut schema = schema.clone();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for key in pinned {
            properties.remove(*key);
        }
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r.as_str().is_none_or(|r| !pinned.contains(&r)));
    }
    schema
}

/// Looks a name up: a secret, an environment variable.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What `{{…}}` placeholders may refer to.
pub struct TemplateScope<'a> {
    /// `{{secrets.X}}`.
    pub secret: Lookup<'a>,
    /// `{{env.X}}`, only where the server's config opts in.
    pub env: Option<Lookup<'a>>,
    /// `{{userId}}`, `{{tenantId}}` and any other context key.
    pub context: &'a CallContext,
}

impl std::fmt::Debug for TemplateScope<'_> {
    // The lookups are closures over secrets: only whether env templates are allowed is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateScope")
            .field("env_allowed", &self.env.is_some())
            .finish_non_exhaustive()
    }
}

/// Renders a pinned value. A string that is one placeholder keeps the referenced value's JSON type
/// (`"{{userId}}"` with a numeric user id gives a number); placeholders inside longer strings are
/// interpolated as text. Objects and arrays are rendered recursively. An unknown reference is an
/// error: a call must not go out with a silently empty credential.
pub fn render(template: &Value, scope: &TemplateScope<'_>) -> Result<Value, String> {
    match template {
        Value::String(text) => render_string(text, scope),
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, scope))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| render(v, scope).map(|v| (k.clone(), v)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn render_string(text: &str, scope: &TemplateScope<'_>) -> Result<Value, String> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
    {
        return lookup(inner.trim(), scope);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
        match lookup(after[..end].trim(), scope)? {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn lookup(reference: &str, scope: &TemplateScope<'_>) -> Result<Value, String> {
    if let Some(name) = reference.strip_prefix("secrets.") {
        return (scope.secret)(name)
            .map(Value::String)
            .ok_or_else(|| format!("secret `{name}` is not set"));
    }
    if let Some(name) = reference.strip_prefix("env.") {
        let env = scope.env.ok_or_else(|| {
            format!("`{{{{env.{name}}}}}` is not allowed for this server; enable env templates in its config")
        })?;
        return env(name)
            .map(Value::String)
            .ok_or_else(|| format!("environment variable `{name}` is not set"));
    }
    scope
        .context
        .get(reference)
        .cloned()
        .ok_or_else(|| format!("context key `{reference}` is not set for this call"))
}

/// The arguments sent upstream: the caller's, with every pinned value set over them. A caller can
/// never override a pinned parameter.
pub fn inject_pinned(
    arguments: Map<String, Value>,
    pinned: Map<String, Value>,
) -> Map<String, Value> {
    let mut arguments = arguments;
    arguments.extend(pinned);
    arguments
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filtering() {
        let allow = vec!["a".to_string(), "internal.x".to_string()];
        let deny = vec!["b".to_string()];
        // (remote name, allow list, deny prefix, expected reason)
        type Case<'a> = (
            &'a str,
            Option<&'a [String]>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            ("a", Some(&allow), None, None),
            ("c", Some(&allow), None, Some("Not in allowTools")),
            ("b", None, None, Some("Denied by denyTools")),
            (
                "internal.x",
                Some(&allow),
                Some("internal."),
                Some("Denied by denyToolPrefix (internal.)"),
            ),
            ("c", None, Some(""), None),
        ];
        for (name, allow, prefix, expected) in cases {
            assert_eq!(
                filter_reason(name, *allow, &deny, *prefix).as_deref(),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn names() {
        let long = "x".repeat(80);
        let cases = [
            ("get-sum", "get-sum"),
            ("acme.getTelemetry", "acme_getTelemetry"),
            ("with space/slash", "with_space_slash"),
            ("", "tool"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_name(input), expected);
            assert!(is_valid_name(&sanitize_name(input)));
        }
        let a = sanitize_name(&long);
        let b = sanitize_name(&format!("{long}y"));
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(is_valid_name(&a));
        assert_ne!(
            a, b,
            "long names that differ only in their tail stay distinct"
        );
        assert_eq!(a, sanitize_name(&long), "deterministic");
        assert!(!is_valid_name("a.b"));
        // The registry relies on a valid name sanitizing to itself.
        for valid in ["a", "get-sum", "x_Y-9", &"z".repeat(MAX_NAME_LEN)] {
            assert!(is_valid_name(valid));
            assert_eq!(sanitize_name(valid), valid);
        }
        assert!(!is_valid_name(&long));
    }

    #[test]
    fn pinned_params_are_hidden_from_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"query": {"type": "string"}, "api_key": {"type": "string"}, "user_id": {}},
            "required": ["query", "api_key"]
        });
        let hidden = hide_pinned(schema.as_object().expect("object"), &["api_key", "user_id"]);
        assert_eq!(
            Value::Object(hidden),
            json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
        );
    }

    #[test]
    fn templates() {
        let secret = |name: &str| (name == "SEARCH_KEY").then(|| "s3cret".to_string());
        let env = |name: &str| (name == "REGION").then(|| "eu".to_string());
        let context = CallContext::new()
            .with("userId", 42)
            .with("tenantId", "acme");
        let with_env = TemplateScope {
            secret: &secret,
            env: Some(&env),
            context: &context,
        };
        let without_env = TemplateScope {
            secret: &secret,
            env: None,
            context: &context,
        };
        let cases: Vec<(&TemplateScope<'_>, Value, Result<Value, &str>)> = vec![
            (
                &with_env,
                json!("{{secrets.SEARCH_KEY}}"),
                Ok(json!("s3cret")),
            ),
            (&with_env, json!("{{userId}}"), Ok(json!(42))),
            (
                &with_env,
                json!("user-{{userId}}@{{tenantId}}"),
                Ok(json!("user-42@acme")),
            ),
            (&with_env, json!("{{env.REGION}}"), Ok(json!("eu"))),
            (
                &with_env,
                json!({"nested": ["{{ tenantId }}", 1]}),
                Ok(json!({"nested": ["acme", 1]})),
            ),
            (&with_env, json!(7), Ok(json!(7))),
            (
                &without_env,
                json!("{{env.REGION}}"),
                Err(
                    "`{{env.REGION}}` is not allowed for this server; enable env templates in its config",
                ),
            ),
            (
                &with_env,
                json!("{{secrets.MISSING}}"),
                Err("secret `MISSING` is not set"),
            ),
            (
                &with_env,
                json!("{{auditingId}}"),
                Err("context key `auditingId` is not set for this call"),
            ),
            (
                &with_env,
                json!("a {{userId"),
                Err("unclosed `{{` in `a {{userId`"),
            ),
        ];
        for (scope, template, expected) in cases {
            let got = render(&template, scope);
            assert_eq!(
                got.as_ref().map_err(String::as_str),
                expected.as_ref().map_err(|e| *e),
                "{template}"
            );
        }
    }

    #[test]
    fn pinned_values_win_over_the_callers() {
        let args = json!({"query": "x", "api_key": "from-the-model"});
        let pinned = json!({"api_key": "pinned"});
        let merged = inject_pinned(
            args.as_object().cloned().expect("object"),
            pinned.as_object().cloned().expect("object"),
        );
        assert_eq!(
            Value::Object(merged),
            json!({"query": "x", "api_key": "pinned"})
        );
    }
}
