//! Errors in a spec, each naming the file, line, column and key path, with the offending
//! line quoted.

use std::fmt;
use std::path::PathBuf;

/// Where in the spec file something was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// A spec that cannot be used.
#[derive(Debug)]
pub enum SpecError {
    /// The file could not be read.
    Read {
        /// The spec file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not parse, or does not fit the schema (an unknown key, a wrong type).
    Yaml {
        /// The spec file.
        path: PathBuf,
        /// The parser's message, with its own location and snippet.
        message: String,
    },
    /// A value parses but is not acceptable.
    Invalid {
        /// The spec file.
        path: PathBuf,
        /// Where the value is.
        origin: Origin,
        /// The key path, such as `service.rate.SubmitMaterials`.
        key: String,
        /// What is wrong and what would be right.
        message: String,
        /// The line of the spec, with a caret under the column.
        snippet: String,
    },
}

impl SpecError {
    /// An invalid value at `origin`, quoting the line from `text`.
    pub fn invalid(
        path: &std::path::Path,
        text: &str,
        origin: Origin,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        SpecError::Invalid {
            path: path.to_path_buf(),
            origin,
            key: key.to_string(),
            message: message.into(),
            snippet: snippet(text, origin),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Read { path, source } => {
                write!(f, "cannot read the spec {}: {source}", path.display())
            }
            SpecError::Yaml { path, message } => write!(f, "{}: {message}", path.display()),
            SpecError::Invalid {
                path,
                origin,
                key,
                message,
                snippet,
            } => {
                write!(
                    f,
                    "{}:{}:{}: {key}: {message}",
                    path.display(),
                    origin.line,
                    origin.column
                )?;
                if !snippet.is_empty() {
                    write!(f, "\n{snippet}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpecError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The line at `origin`, numbered, with a caret under the column.
fn snippet(text: &str, origin: Origin) -> String {
    let Some(line) = origin
        .line
        .checked_sub(1)
        .and_then(|index| text.lines().nth(usize::try_from(index).ok()?))
    else {
        return String::new();
    };
    let number = origin.line.to_string();
    let gutter = " ".repeat(number.len());
    let indent: String = line
        .chars()
        .take(usize::try_from(origin.column.saturating_sub(1)).unwrap_or(0))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(" {gutter} |\n {number} | {line}\n {gutter} | {indent}^")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_quote_their_line() {
        let text = "a: 1\nservice:\n  rate: 10/x\n";
        let error = SpecError::invalid(
            std::path::Path::new("p.yaml"),
            text,
            Origin { line: 3, column: 9 },
            "service.rate",
            "bad",
        );
        assert_eq!(
            error.to_string(),
            "p.yaml:3:9: service.rate: bad\n   |\n 3 |   rate: 10/x\n   |         ^"
        );
    }
}
