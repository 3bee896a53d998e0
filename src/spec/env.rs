//! Environment variables in a spec's string values: `${VAR}`, `${VAR:-default}`, and `$$`
//! for a literal dollar sign.
//!
//! Interpolation happens value by value after the YAML is parsed, never on the file's
//! text, so a variable holding `#` or `: ` cannot change the spec's structure.

/// A string value after interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The value.
    pub value: String,
    /// Whether the whole value was one variable reference, such as `${SECRET}`: the only
    /// form in which a spec may name a secret.
    pub is_reference: bool,
}

/// Replaces every reference in `text` with the value `lookup` gives, or says which
/// variable is unset or which reference is malformed.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Expanded, String> {
    let mut value = String::with_capacity(text.len());
    let mut rest = text;
    let mut references = 0;
    while let Some(at) = rest.find('$') {
        value.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            value.push('$');
            rest = after;
            continue;
        }
        let Some(body) = rest.strip_prefix('{') else {
            value.push('$');
            continue;
        };
        let end = body
            .find('}')
            .ok_or_else(|| format!("an unclosed ${{ in {text:?}; write ${{VAR}}"))?;
        value.push_str(&reference(&body[..end], &lookup)?);
        references += 1;
        rest = &body[end + 1..];
    }
    value.push_str(rest);
    let trimmed = text.trim();
    let is_reference = references == 1
        && trimmed.starts_with("${")
        && trimmed.ends_with('}')
        && trimmed.matches('$').count() == 1;
    Ok(Expanded {
        value,
        is_reference,
    })
}

fn reference(inner: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "${{{inner}}} does not name an environment variable; write ${{VAR}} or ${{VAR:-default}}"
        ));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_string()),
        (None, None) => Err(format!(
            "the environment variable {name} is not set; set it, or give a default as ${{{name}:-default}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("cn-shanghai".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced() {
        let expanded = expand("https://{REGION}/${REGION}/x", env).unwrap();
        assert_eq!(expanded.value, "https://{REGION}/cn-shanghai/x");
        assert!(!expanded.is_reference);
        assert!(expand("${REGION}", env).unwrap().is_reference);
    }

    #[test]
    fn defaults_apply_to_unset_and_empty_variables() {
        assert_eq!(expand("${NOPE:-10/s}", env).unwrap().value, "10/s");
        assert_eq!(expand("${EMPTY:-x}", env).unwrap().value, "x");
        assert_eq!(expand("${REGION:-x}", env).unwrap().value, "cn-shanghai");
    }

    #[test]
    fn dollars_escape_and_stand_alone() {
        assert_eq!(expand("a$$b $5", env).unwrap().value, "a$b $5");
    }

    #[test]
    fn unset_and_malformed_references_are_errors() {
        let unset = expand("${NOPE}", env).unwrap_err();
        assert!(unset.contains("NOPE is not set"), "{unset}");
        assert!(expand("${NOPE", env).unwrap_err().contains("unclosed"));
        assert!(expand("${1X}", env).unwrap_err().contains("does not name"));
        assert!(expand("${}", env).is_err());
    }
}
