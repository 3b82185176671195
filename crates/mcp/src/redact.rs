//! Text from lower layers made fit to show: any URL in it cut to its scheme and host, so that a
//! password, token or query string never reaches a log, an answer or a model.

/// Drops anything that looks like a URL from a message, keeping its scheme and host only, so that
/// a password, token or query string in it never reaches a log or a model.
pub fn sanitize_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (index, word) in message.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let trimmed = word.trim_matches(|c| matches!(c, '(' | ')' | '"' | '\'' | ',' | '<' | '>'));
        match url::Url::parse(trimmed) {
            Ok(parsed) if parsed.has_host() => {
                out.push_str(&format!(
                    "{}://{}",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or_default()
                ));
            }
            _ => out.push_str(word),
        }
    }
    const MAX: usize = 300;
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}
