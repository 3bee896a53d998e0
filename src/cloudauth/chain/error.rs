//! What can go wrong while looking for credentials, and the places looked at.
//!
//! Every message names the variable, file, line or profile concerned and says what to do,
//! but never carries a value read from a secret: file contents are described, not quoted.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::{
    ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN, ProfileOrigin, SUPPORTED_MODES,
    SUPPORTED_TYPES,
};

/// One place the chain looked at without finding credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The access key variables were not set.
    Environment,
    /// The file does not exist.
    NoFile(PathBuf),
    /// The file exists but has no profile of that name.
    NoProfile {
        /// The file.
        file: PathBuf,
        /// The profile looked for.
        profile: String,
    },
    /// No home directory is known, so this file (written from the home) was not looked at.
    NoHome(&'static str),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Environment => write!(
                f,
                "the environment ({ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} are not set)"
            ),
            Place::NoFile(file) => write!(f, "{} (no such file)", file.display()),
            Place::NoProfile { file, profile } => {
                write!(f, "{} (no profile \"{profile}\")", file.display())
            }
            Place::NoHome(file) => write!(f, "{file} (no home directory to look in)"),
        }
    }
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// One of the access key variables is set, the other is not.
    #[error("{set} is set but {missing} is not: set both, or unset {set} to use a profile instead")]
    HalfSetEnvironment {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// A security token is set without the access key it belongs to.
    #[error(
        "{} is set but {} and {} are not: set all three, or unset {}",
        ENV_SECURITY_TOKEN,
        ENV_ACCESS_KEY_ID,
        ENV_ACCESS_KEY_SECRET,
        ENV_SECURITY_TOKEN
    )]
    TokenWithoutKeys,
    /// A variable points at a file that does not exist.
    #[error("{variable} names {}, which does not exist", file.display())]
    MissingFile {
        /// The variable that named the file.
        variable: &'static str,
        /// The file.
        file: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The CLI config is not JSON.
    #[error("{} is not valid JSON: {problem} at line {line}, column {column}", file.display())]
    MalformedJson {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// What the parser expected; never the text it found.
        problem: String,
    },
    /// The CLI config is JSON, but not shaped as the CLI writes it.
    #[error("{}: {key} {problem}", file.display())]
    MalformedConfig {
        /// The file.
        file: PathBuf,
        /// Where in the document, e.g. `profiles[2].access_key_id`.
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A line of the credentials file could not be read.
    #[error("{}, line {line}: {problem}", file.display())]
    MalformedIni {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it; never its content.
        problem: String,
    },
    /// The selected profile lacks a value its mode or type needs.
    #[error(
        "profile \"{profile}\" of {}{} has no {field}; add it, or choose another profile",
        file.display(),
        at_line(*line)
    )]
    IncompleteProfile {
        /// The file.
        file: PathBuf,
        /// The profile.
        profile: String,
        /// The missing or empty key.
        field: &'static str,
        /// The line of the profile's section, in the credentials file.
        line: Option<usize>,
    },
    /// The selected CLI profile uses a mode this tool cannot sign with.
    #[error(
        "profile \"{profile}\" of {} uses mode {mode}, which is not supported; \
         supported modes: {}",
        file.display(),
        SUPPORTED_MODES.join(", ")
    )]
    UnsupportedMode {
        /// The file.
        file: PathBuf,
        /// The profile.
        profile: String,
        /// Its mode.
        mode: String,
    },
    /// The selected section of the credentials file has a type this tool cannot sign with.
    #[error(
        "profile [{profile}] of {}, line {line}: type = {kind} is not supported; \
         supported types: {}",
        file.display(),
        SUPPORTED_TYPES.join(", ")
    )]
    UnsupportedType {
        /// The file.
        file: PathBuf,
        /// The profile.
        profile: String,
        /// The line of its `type`.
        line: usize,
        /// Its type.
        kind: String,
    },
    /// A profile was asked for by name and no file has it.
    #[error(
        "profile \"{profile}\" ({origin}) was not found: looked at {}",
        places(searched)
    )]
    ProfileNotFound {
        /// The profile.
        profile: String,
        /// Who asked for it.
        origin: ProfileOrigin,
        /// The files looked at.
        searched: Vec<Place>,
    },
    /// Nothing yielded credentials.
    #[error(
        "no credentials for a real endpoint: looked at {}. Set {} and {}, \
         or run `aliyun configure` to write a profile to ~/.aliyun/config.json, \
         or add a [default] section with type = access_key to ~/.alibabacloud/credentials",
        places(searched),
        ENV_ACCESS_KEY_ID,
        ENV_ACCESS_KEY_SECRET
    )]
    NotFound {
        /// Every place looked at, in order.
        searched: Vec<Place>,
    },
}

/// The places, in order, separated by semicolons.
fn places(searched: &[Place]) -> String {
    let shown: Vec<String> = searched.iter().map(Place::to_string).collect();
    shown.join("; ")
}

/// `", line N"` when there is a line to show.
fn at_line(line: Option<usize>) -> String {
    line.map(|line| format!(", line {line}"))
        .unwrap_or_default()
}
