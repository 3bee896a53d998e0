//! Where the access key for a real endpoint comes from: the default credential chain of the
//! Alibaba Cloud SDKs, reduced to the sources that hold a key themselves.
//!
//! In order, the first that yields credentials wins:
//!
//! 1. the environment: [`ENV_ACCESS_KEY_ID`] and [`ENV_ACCESS_KEY_SECRET`], with an optional
//!    [`ENV_SECURITY_TOKEN`];
//! 2. a profile of the Alibaba Cloud CLI's `~/.aliyun/config.json` ([`ENV_CONFIG_FILE`]
//!    moves it), in mode `AK` or `StsToken`;
//! 3. a section of the SDKs' INI file `~/.alibabacloud/credentials`
//!    ([`ENV_CREDENTIALS_FILE`] moves it), of type `access_key` or `sts`.
//!
//! The profile is the one named by `--profile` or the spec, else by [`ENV_PROFILE`], else
//! the CLI config's `current`, else `default`. A profile asked for by name must exist;
//! the chain never falls back to another identity than the one asked for.
//!
//! `run` calls [`from_process`] when the spec's endpoint is a URL and logs the [`Source`]
//! it returns. The tests call [`resolve`] with their own environment and home directory.

mod cli_config;
mod credentials_file;
mod error;
mod ini;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use error::{ChainError, Place};

use super::Credentials;

/// The variable holding the AccessKeyId.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// The variable holding the AccessKeySecret.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// The variable holding the STS SecurityToken of temporary credentials.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
/// The variable naming the profile when no argument does.
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
/// The variable that moves the CLI config away from `~/.aliyun/config.json`.
pub const ENV_CONFIG_FILE: &str = "ALIBABA_CLOUD_CONFIG_FILE";
/// The variable that moves the INI file away from `~/.alibabacloud/credentials`.
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";

/// The variables whose values are secrets, for whoever prints or forwards an environment.
pub const SECRET_ENV_VARS: &[&str] = &[ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN];

/// The CLI config's place under the home directory.
pub const CLI_CONFIG_PATH: &str = ".aliyun/config.json";
/// The INI file's place under the home directory.
pub const CREDENTIALS_FILE_PATH: &str = ".alibabacloud/credentials";

/// The modes of a CLI profile that can be read.
pub const SUPPORTED_MODES: &[&str] = &["AK", "StsToken"];
/// The types of an INI section that can be read.
pub const SUPPORTED_TYPES: &[&str] = &["access_key", "sts"];

/// What [`resolve`] may look at.
pub struct Lookup<'a> {
    /// The profile named by `--profile` or `service.credentials.profile`, if any.
    pub profile: Option<&'a str>,
    /// Reads one environment variable; an empty value counts as unset.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory the default file locations hang from, if known.
    pub home: Option<PathBuf>,
}

impl Lookup<'_> {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.is_empty())
    }
}

/// Where the credentials came from, for a log line. It never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `ALIBABA_CLOUD_ACCESS_KEY_*` variables.
    Environment,
    /// A profile of the Alibaba Cloud CLI's config.
    CliProfile {
        /// The config file.
        file: PathBuf,
        /// The profile.
        profile: String,
    },
    /// A section of the SDKs' INI credentials file.
    CredentialsFile {
        /// The INI file.
        file: PathBuf,
        /// The section.
        profile: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => write!(f, "environment ({ENV_ACCESS_KEY_ID})"),
            Source::CliProfile { file, profile } | Source::CredentialsFile { file, profile } => {
                write!(f, "profile \"{profile}\" of {}", file.display())
            }
        }
    }
}

/// Who chose the profile, which decides what happens when no file has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// `--profile` or `service.credentials.profile`.
    Argument,
    /// [`ENV_PROFILE`].
    Environment,
    /// The `current` of the CLI config.
    CliCurrent,
    /// Nobody: the profile called `default`.
    Default,
}

impl fmt::Display for ProfileOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileOrigin::Argument => {
                f.write_str("named by --profile or service.credentials.profile")
            }
            ProfileOrigin::Environment => write!(f, "named by {ENV_PROFILE}"),
            ProfileOrigin::CliCurrent => f.write_str("the current profile of the CLI config"),
            ProfileOrigin::Default => f.write_str("the default profile"),
        }
    }
}

/// The profile to look for, and who chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    /// The profile's name.
    name: String,
    /// Who chose it.
    origin: ProfileOrigin,
}

impl Choice {
    /// The profile called `default`, chosen by nobody.
    fn default_profile() -> Self {
        Choice {
            name: "default".to_string(),
            origin: ProfileOrigin::Default,
        }
    }
}

/// A file the chain reads, and the variable that put it there, if one did.
#[derive(Debug, Clone)]
struct Location {
    /// The file.
    file: PathBuf,
    /// The variable that named it; a file named this way must exist.
    variable: Option<&'static str>,
}

/// A profile being read, to name it in errors.
struct ProfileAt<'a> {
    /// Its file.
    file: &'a Path,
    /// Its name.
    profile: &'a str,
    /// The line of its section, in the INI file.
    line: Option<usize>,
}

impl ProfileAt<'_> {
    /// The value of `field`, which must be present and not empty.
    fn require(&self, value: Option<&str>, field: &'static str) -> Result<String, ChainError> {
        match value {
            Some(value) if !value.is_empty() => Ok(value.to_string()),
            _ => Err(self.incomplete(field)),
        }
    }

    /// The error for a profile without `field`.
    fn incomplete(&self, field: &'static str) -> ChainError {
        ChainError::IncompleteProfile {
            file: self.file.to_path_buf(),
            profile: self.profile.to_string(),
            field,
            line: self.line,
        }
    }
}

/// Finds the credentials the way the Alibaba Cloud SDKs do; see the module docs.
pub fn resolve(lookup: &Lookup<'_>) -> Result<(Credentials, Source), ChainError> {
    let named = named_profile(lookup);
    let mut searched = Vec::new();

    // A profile named on the command line or in the spec is the identity the user wants,
    // and keys left over in the environment must not quietly replace it. The aliyun CLI
    // ranks --profile above the environment as well.
    if named.as_ref().map(|c| c.origin) != Some(ProfileOrigin::Argument) {
        if let Some(credentials) = from_environment(lookup)? {
            return Ok((credentials, Source::Environment));
        }
        searched.push(Place::Environment);
    }

    let links = [
        (
            ENV_CONFIG_FILE,
            CLI_CONFIG_PATH,
            "~/.aliyun/config.json",
            cli_config::find as Link,
        ),
        (
            ENV_CREDENTIALS_FILE,
            CREDENTIALS_FILE_PATH,
            "~/.alibabacloud/credentials",
            credentials_file::find,
        ),
    ];
    for (variable, path, shown, find) in links {
        let Some(location) = locate(lookup, variable, path) else {
            searched.push(Place::NoHome(shown));
            continue;
        };
        if let Some(found) = find(&location, named.as_ref(), &mut searched)? {
            return Ok(found);
        }
    }

    Err(match named {
        Some(choice) => {
            searched.retain(|place| *place != Place::Environment);
            ChainError::ProfileNotFound {
                profile: choice.name,
                origin: choice.origin,
                searched,
            }
        }
        None => ChainError::NotFound { searched },
    })
}

/// One file-backed link of the chain.
type Link = fn(
    &Location,
    Option<&Choice>,
    &mut Vec<Place>,
) -> Result<Option<(Credentials, Source)>, ChainError>;

/// [`resolve`] with this process's environment and home directory.
pub fn from_process(profile: Option<&str>) -> Result<(Credentials, Source), ChainError> {
    let env = |name: &str| std::env::var(name).ok();
    let lookup = Lookup {
        profile,
        env: &env,
        home: process_home(),
    };
    resolve(&lookup)
}

/// The home directory: `HOME`, or `USERPROFILE` on Windows.
fn process_home() -> Option<PathBuf> {
    ["HOME", "USERPROFILE"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The profile named by the argument, else by [`ENV_PROFILE`].
fn named_profile(lookup: &Lookup<'_>) -> Option<Choice> {
    if let Some(name) = lookup.profile.filter(|name| !name.is_empty()) {
        return Some(Choice {
            name: name.to_string(),
            origin: ProfileOrigin::Argument,
        });
    }
    lookup.var(ENV_PROFILE).map(|name| Choice {
        name,
        origin: ProfileOrigin::Environment,
    })
}

/// The key pair of the environment, if its variables are set; a partial set is an error,
/// since it is almost always a typo or a half-finished export.
fn from_environment(lookup: &Lookup<'_>) -> Result<Option<Credentials>, ChainError> {
    let id = lookup.var(ENV_ACCESS_KEY_ID);
    let secret = lookup.var(ENV_ACCESS_KEY_SECRET);
    let token = lookup.var(ENV_SECURITY_TOKEN);

    let half_set = |set, missing| ChainError::HalfSetEnvironment { set, missing };
    match (id, secret, token) {
        (Some(id), Some(secret), None) => Ok(Some(Credentials::new(id, secret))),
        (Some(id), Some(secret), Some(token)) => Ok(Some(
            Credentials::new(id, secret).with_security_token(token),
        )),
        (Some(_), None, _) => Err(half_set(ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET)),
        (None, Some(_), _) => Err(half_set(ENV_ACCESS_KEY_SECRET, ENV_ACCESS_KEY_ID)),
        (None, None, Some(_)) => Err(ChainError::TokenWithoutKeys),
        (None, None, None) => Ok(None),
    }
}

/// The file a link reads: the one `variable` names, else `path` under the home directory.
fn locate(lookup: &Lookup<'_>, variable: &'static str, path: &str) -> Option<Location> {
    if let Some(file) = lookup.var(variable) {
        return Some(Location {
            file: PathBuf::from(file),
            variable: Some(variable),
        });
    }
    lookup.home.as_ref().map(|home| Location {
        file: home.join(path),
        variable: None,
    })
}

/// The file's text, or `None` if it does not exist where the default location put it.
fn read_optional(location: &Location) -> Result<Option<String>, ChainError> {
    let file = &location.file;
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => match location.variable {
            Some(variable) => Err(ChainError::MissingFile {
                variable,
                file: file.clone(),
            }),
            None => Ok(None),
        },
        Err(source) => Err(ChainError::Unreadable {
            file: file.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
