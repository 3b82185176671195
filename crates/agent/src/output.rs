//! What a tool's answer becomes before the model sees it: text, capped, with secrets masked and
//! errors cut short. Pure.

use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;
use switchboard_mcp::model::ContentBlock;

/// Tool output sent to the model is capped at this many characters by default.
pub const DEFAULT_OUTPUT_CAP: usize = 20_000;
/// An error text sent to the model is at most this long: enough for the reason, never a dump.
const MAX_ERROR_CHARS: usize = 500;
/// Shorter values are not masked: masking `1` or `true` everywhere would garble every output, and
/// values that short are not credentials.
const MIN_SECRET_LEN: usize = 6;

/// The text chat completions get for a tool's content: text as is, other blocks described. With
/// `structuredContent`, its JSON replaces the text blocks, which the spec has servers fill with the
/// same JSON for older clients.
pub fn content_text(content: &[ContentBlock], structured: Option<&Value>) -> String {
    let mut parts: Vec<String> = content
        .iter()
        .map(|block| serde_json::to_value(block).unwrap_or(Value::Null))
        .filter(|block| structured.is_none() || block["type"] != "text")
        .map(|block| describe_block(&block))
        .collect();
    if let Some(structured) = structured {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

/// One content block as text. Blocks are read through their JSON form, which the spec fixes,
/// rather than through the SDK's types, which change between releases.
fn describe_block(block: &Value) -> String {
    let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "text" => field("text").to_string(),
        kind @ ("image" | "audio") => format!(
            "[{kind}: {}, {} bytes]",
            field("mimeType"),
            base64_decoded_len(field("data"))
        ),
        "resource" => {
            let resource = block.get("resource").cloned().unwrap_or(Value::Null);
            let get = |name: &str| resource.get(name).and_then(Value::as_str);
            let uri = get("uri").unwrap_or_default();
            let mime = get("mimeType").unwrap_or("unknown type");
            match (get("text"), get("blob")) {
                (Some(text), _) => format!("[resource: {uri}, {mime}]\n{text}"),
                (None, Some(blob)) => {
                    format!(
                        "[resource: {uri}, {mime}, {} bytes]",
                        base64_decoded_len(blob)
                    )
                }
                (None, None) => format!("[resource: {uri}, {mime}]"),
            }
        }
        "resource_link" => format!("[resource link: {} ({})]", field("uri"), field("name")),
        other => format!("[{other} content]"),
    }
}

/// The length of the bytes a base64 text decodes to, without decoding it.
fn base64_decoded_len(data: &str) -> usize {
    let data = data.trim();
    let padding = data.chars().rev().take_while(|c| *c == '=').count();
    (data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1)).saturating_sub(padding)
}

/// Keeps at most `cap` characters: the head and the tail, with a note of how much was cut in
/// between. Returns the text and whether it was cut.
pub fn cap_output(text: String, cap: usize) -> (String, bool) {
    let total = text.chars().count();
    if total <= cap {
        return (text, false);
    }
    let cut = total - cap;
    let head_chars = cap / 2;
    let tail_chars = cap - head_chars;
    let head: String = text.chars().take(head_chars).collect();
    let tail: String = text.chars().skip(total - tail_chars).collect();
    (
        format!("{head}\n…[{cut} characters cut from the middle of {total}]…\n{tail}"),
        true,
    )
}

/// An error text for the model: the first lines before any stack trace, URLs reduced to their host,
/// and short.
pub fn sanitize_error(text: &str) -> String {
    // A Python traceback ends with the error itself; the frames come before it.
    let text = if text.contains("Traceback (most recent call last)") {
        text.lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default()
    } else {
        text
    };
    let mut kept = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let is_trace = trimmed.starts_with("at ") && line.len() != trimmed.len()
            || trimmed.starts_with("stack backtrace:");
        if is_trace {
            break;
        }
        kept.push(line.trim());
    }
    let joined = kept
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let (capped, _) = cap_output(
        switchboard_mcp::error::sanitize_message(&joined),
        MAX_ERROR_CHARS,
    );
    if capped.is_empty() {
        "the tool failed without a message".into()
    } else {
        capped
    }
}

/// Masks known secret values (API keys, env values and headers given for the run, secrets read by
/// templates) in any text that leaves the run. Clones share the list, so secrets learned while the
/// run goes on are masked from then on.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        write!(f, "Redactor({count} secrets)")
    }
}

impl Redactor {
    pub fn add(&self, secret: &str) {
        if secret.chars().count() < MIN_SECRET_LEN {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if !secrets.iter().any(|known| known == secret) {
            secrets.push(secret.to_string());
            // Longest first, so that a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = text.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// Masks every string in a JSON value, keys included: done on the value, not its text, so
    /// that a secret that JSON escapes (a quote, a backslash) is masked too.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.redact(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.redact_json(&mut item);
                    map.insert(self.redact(&key), item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(value: Value) -> ContentBlock {
        serde_json::from_value(value).expect("a content block")
    }

    #[test]
    fn non_text_content_is_described() {
        let content = [
            block(json!({"type": "text", "text": "hello"})),
            block(json!({"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"})),
            block(json!({"type": "audio", "data": "AAAA", "mimeType": "audio/wav"})),
            block(
                json!({"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "body"}}),
            ),
            block(
                json!({"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAECAw=="}}),
            ),
            block(json!({"type": "resource_link", "uri": "file:///c", "name": "c"})),
        ];
        assert_eq!(
            content_text(&content, None),
            "hello\n[image: image/png, 5 bytes]\n[audio: audio/wav, 3 bytes]\n\
             [resource: file:///a.txt, text/plain]\nbody\n\
             [resource: file:///b.bin, unknown type, 4 bytes]\n[resource link: file:///c (c)]"
        );
    }

    #[test]
    fn structured_content_replaces_its_text_copy() {
        let structured = json!({"temperature": 21});
        let content = [
            block(json!({"type": "text", "text": "{\"temperature\": 21}"})),
            block(json!({"type": "image", "data": "AAAA", "mimeType": "image/png"})),
        ];
        assert_eq!(
            content_text(&content, Some(&structured)),
            "[image: image/png, 3 bytes]\n{\"temperature\":21}"
        );
    }

    #[test]
    fn capping_keeps_head_and_tail() {
        let (text, cut) = cap_output("abcdefghij".into(), 4);
        assert!(cut);
        assert_eq!(text, "ab\n…[6 characters cut from the middle of 10]…\nij");
        assert_eq!(cap_output("abc".into(), 4), ("abc".to_string(), false));
        // Multi-byte characters are counted as characters and never split.
        let (text, _) = cap_output("ééééé".into(), 2);
        assert!(text.starts_with('é') && text.ends_with('é'));
    }

    #[test]
    fn errors_lose_traces_and_credentials() {
        let node = "Error: boom at https://user:pw@db.internal/x?key=1\n    at Object.<anonymous> (/srv/app.js:1:1)\n    at Module._compile";
        assert_eq!(sanitize_error(node), "Error: boom at https://db.internal");
        let python = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad";
        assert_eq!(sanitize_error(python), "ValueError: bad");
        assert_eq!(sanitize_error("  \n"), "the tool failed without a message");
        assert!(sanitize_error(&"x".repeat(5000)).chars().count() < 600);
    }

    #[test]
    fn json_is_masked_in_every_string_and_key() {
        let redactor = Redactor::default();
        redactor.add("pa\"ss\\word");
        let mut value = json!({
            "task": "use pa\"ss\\word here",
            "steps": [{"out": ["x pa\"ss\\word"]}],
            "pa\"ss\\word": 1,
        });
        redactor.redact_json(&mut value);
        assert_eq!(
            value,
            json!({"task": "use *** here", "steps": [{"out": ["x ***"]}], "***": 1})
        );
        assert!(!value.to_string().contains("ss"));
    }

    #[test]
    fn redaction_masks_known_secrets_only() {
        let redactor = Redactor::default();
        redactor.add("sk-live-123456");
        redactor.add("abc"); // too short to be a credential
        assert_eq!(
            redactor.redact("key sk-live-123456 and abc"),
            "key *** and abc"
        );
    }
}
