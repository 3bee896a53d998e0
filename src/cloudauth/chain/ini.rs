//! A small reader for the INI dialect of `~/.alibabacloud/credentials`: `[section]` headers,
//! `key = value` lines, whole-line comments starting with `;` or `#`, and blank lines.
//!
//! Only [`super::credentials_file`] uses it. It keeps the line of every section and key so
//! that errors can point at them, and its own errors never quote a line: any line of this
//! file may hold a secret.

/// One `[name]` section and its keys, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The name between the brackets, trimmed.
    pub name: String,
    /// The 1-based line of the header.
    pub line: usize,
    /// The keys of the section.
    pub entries: Vec<Entry>,
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key, trimmed and lowercased: the SDKs' readers do not care about its case.
    pub key: String,
    /// The value, trimmed, without surrounding quotes or a trailing comment.
    pub value: String,
    /// The 1-based line.
    pub line: usize,
}

impl Section {
    /// The entry for `key` (lowercase), if the section has it.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

/// Why a line could not be read. It says what was wrong, never what the line held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub(crate) struct IniError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads the whole file into its sections.
pub(crate) fn parse(text: &str) -> Result<Vec<Section>, IniError> {
    let mut sections: Vec<Section> = Vec::new();

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with(';') || content.starts_with('#') {
            continue;
        }
        if content.starts_with('[') {
            let section = header(content, line)?;
            if let Some(first) = sections.iter().find(|s| s.name == section.name) {
                return Err(problem(
                    line,
                    format!(
                        "section [{}] already began on line {}",
                        section.name, first.line
                    ),
                ));
            }
            sections.push(section);
        } else {
            let Some(current) = sections.last_mut() else {
                return Err(problem(line, "a key before the first [section]".into()));
            };
            add_entry(current, content, line)?;
        }
    }
    Ok(sections)
}

/// A `[name]` header line.
fn header(content: &str, line: usize) -> Result<Section, IniError> {
    let Some(inner) = content.strip_prefix('[').and_then(|c| c.strip_suffix(']')) else {
        return Err(problem(
            line,
            "a section header without its closing `]`".into(),
        ));
    };
    let name = inner.trim();
    if name.is_empty() {
        return Err(problem(line, "a section header with no name".into()));
    }
    Ok(Section {
        name: name.to_string(),
        line,
        entries: Vec::new(),
    })
}

/// Adds one `key = value` line to `section`.
fn add_entry(section: &mut Section, content: &str, line: usize) -> Result<(), IniError> {
    let Some((key, value)) = content.split_once('=') else {
        return Err(problem(
            line,
            "expected `key = value` or a [section]".into(),
        ));
    };
    let key = key.trim().to_ascii_lowercase();
    if key.is_empty() {
        return Err(problem(line, "a `= value` line with no key".into()));
    }
    if let Some(first) = section.get(&key) {
        return Err(problem(
            line,
            format!(
                "key `{key}` of [{}] was already set on line {}",
                section.name, first.line
            ),
        ));
    }

    section.entries.push(Entry {
        key,
        value: clean_value(value),
        line,
    });
    Ok(())
}

/// The value without a trailing comment or the quotes around it.
///
/// A comment must follow whitespace (`key = v # note`), so that a `#` or `;` inside a
/// value survives; AccessKey secrets are alphanumeric, but tokens and passwords in other
/// tools' files are not.
fn clean_value(value: &str) -> String {
    let mut value = value.trim();
    if let Some(at) = value
        .char_indices()
        .find(|&(i, c)| (c == '#' || c == ';') && value[..i].ends_with([' ', '\t']))
        .map(|(i, _)| i)
    {
        value = value[..at].trim_end();
    }
    ['"', '\'']
        .iter()
        .find_map(|&q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
        .unwrap_or(value)
        .to_string()
}

/// An [`IniError`] on `line`.
fn problem(line: usize, problem: String) -> IniError {
    IniError { line, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_keys_comments_and_whitespace() {
        let text = "; a comment\n# another\n\n  [default]  \ntype = access_key\n\
                    Access_Key_Id=LTAIexample\n\t access_key_secret =  \"s3cr3t\"  # note\n\
                    [prod]\ntype=sts\nsecurity_token = 'tok;en' ; trailing\n";
        let sections = parse(text).unwrap();

        assert_eq!(sections.len(), 2);
        let default = &sections[0];
        assert_eq!((default.name.as_str(), default.line), ("default", 4));
        assert_eq!(default.get("access_key_id").unwrap().value, "LTAIexample");
        assert_eq!(default.get("access_key_id").unwrap().line, 6);
        assert_eq!(default.get("access_key_secret").unwrap().value, "s3cr3t");
        assert_eq!(sections[1].get("security_token").unwrap().value, "tok;en");
    }

    #[test]
    fn keeps_a_hash_inside_a_value_and_an_empty_value() {
        let sections = parse("[a]\nsecret = ab#cd\nempty =\n").unwrap();
        assert_eq!(sections[0].get("secret").unwrap().value, "ab#cd");
        assert_eq!(sections[0].get("empty").unwrap().value, "");
    }

    #[test]
    fn errors_give_the_line_and_never_the_content() {
        let cases = [
            ("access_key_secret = hush-hush\n", 1, "before the first"),
            ("[a]\nhush-hush\n", 2, "expected `key = value`"),
            ("[a\n", 1, "closing"),
            ("[ ]\n", 1, "no name"),
            ("[a]\n= hush-hush\n", 2, "no key"),
            ("[a]\n\n[a]\n", 3, "already began on line 1"),
            (
                "[a]\nk = hush-hush\nK = hush-hush\n",
                3,
                "already set on line 2",
            ),
        ];
        for (text, line, expected) in cases {
            let error = parse(text).unwrap_err();
            let shown = error.to_string();
            assert_eq!(error.line, line, "{text:?}");
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains("hush-hush"), "{shown}");
        }
    }
}
