//! The second link of the chain: a profile of the Alibaba Cloud CLI's `config.json`.
//!
//! The CLI writes `{"current": "<name>", "profiles": [{"name", "mode", "access_key_id",
//! "access_key_secret", "sts_token", "region_id", ...}]}`. Only the modes that carry a key
//! themselves, `AK` and `StsToken`, are read; the others need a call to STS or to the
//! instance metadata service first, which this tool does not make.
//!
//! The document is read as untyped JSON and walked by hand, so that a value of the wrong
//! type is reported by its key path, never by its content as serde's messages would.

use std::path::Path;

use serde_json::{Map, Value};

use super::{ChainError, Choice, Location, Place, ProfileAt, ProfileOrigin, Source, read_optional};
use crate::cloudauth::Credentials;

/// The key pair of the profile the choice (or the file's `current`) selects, if the file
/// exists and has it.
///
/// A missing file, or a missing profile that nobody named, adds to `searched` and yields
/// `None` so the chain goes on. A profile named by `current` that is not in the file is an
/// error: the CLI itself would refuse the file.
pub(super) fn find(
    location: &Location,
    named: Option<&Choice>,
    searched: &mut Vec<Place>,
) -> Result<Option<(Credentials, Source)>, ChainError> {
    let file = &location.file;
    let Some(text) = read_optional(location)? else {
        searched.push(Place::NoFile(file.clone()));
        return Ok(None);
    };
    let config = parse(&text, file)?;
    let choice = match named {
        Some(choice) => choice.clone(),
        None => current_or_default(&config, file)?,
    };

    let Some((index, profile)) = profile_named(&config, &choice.name, file)? else {
        let missing = Place::NoProfile {
            file: file.clone(),
            profile: choice.name.clone(),
        };
        if choice.origin == ProfileOrigin::CliCurrent {
            return Err(ChainError::ProfileNotFound {
                profile: choice.name,
                origin: choice.origin,
                searched: vec![missing],
            });
        }
        searched.push(missing);
        return Ok(None);
    };

    let credentials = credentials_of(profile, index, &choice.name, file)?;
    let source = Source::CliProfile {
        file: file.clone(),
        profile: choice.name,
    };
    Ok(Some((credentials, source)))
}

/// The document's top-level object.
fn parse(text: &str, file: &Path) -> Result<Map<String, Value>, ChainError> {
    let value: Value = serde_json::from_str(text).map_err(|error| ChainError::MalformedJson {
        file: file.to_path_buf(),
        line: error.line(),
        column: error.column(),
        problem: syntax_problem(&error),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(malformed(
            file,
            "the top level".into(),
            "is not a JSON object",
        )),
    }
}

/// What the parser expected, without the position it appends.
///
/// Reading into a `Value` only fails on syntax, whose messages are fixed phrases such as
/// "expected `,` or `}`"; a data error could quote the input, so it is not shown.
fn syntax_problem(error: &serde_json::Error) -> String {
    use serde_json::error::Category;

    match error.classify() {
        Category::Syntax | Category::Eof => {
            let position = format!(" at line {} column {}", error.line(), error.column());
            let shown = error.to_string();
            shown.strip_suffix(&position).unwrap_or(&shown).to_string()
        }
        Category::Data | Category::Io => "unexpected content".to_string(),
    }
}

/// The profile named by `current`, or `default` when the file names none.
fn current_or_default(config: &Map<String, Value>, file: &Path) -> Result<Choice, ChainError> {
    match config.get("current") {
        None | Some(Value::Null) => Ok(Choice::default_profile()),
        Some(Value::String(name)) if name.is_empty() => Ok(Choice::default_profile()),
        Some(Value::String(name)) => Ok(Choice {
            name: name.clone(),
            origin: ProfileOrigin::CliCurrent,
        }),
        Some(_) => Err(malformed(file, "current".into(), "is not a string")),
    }
}

/// A profile of the config, with its index in `profiles` for error messages.
type IndexedProfile<'c> = (usize, &'c Map<String, Value>);

/// The profile called `name`.
fn profile_named<'c>(
    config: &'c Map<String, Value>,
    name: &str,
    file: &Path,
) -> Result<Option<IndexedProfile<'c>>, ChainError> {
    let profiles = match config.get("profiles") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(profiles)) => profiles,
        Some(_) => return Err(malformed(file, "profiles".into(), "is not a list")),
    };

    for (index, entry) in profiles.iter().enumerate() {
        let Value::Object(profile) = entry else {
            return Err(malformed(
                file,
                format!("profiles[{index}]"),
                "is not an object",
            ));
        };
        match profile.get("name") {
            Some(Value::String(candidate)) if candidate == name => {
                return Ok(Some((index, profile)));
            }
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => {
                let key = format!("profiles[{index}].name");
                return Err(malformed(file, key, "is not a string"));
            }
        }
    }
    Ok(None)
}

/// The key pair of one profile, by its mode.
///
/// A profile without a mode is read as `AK`, the mode `aliyun configure` uses when none is
/// given.
fn credentials_of(
    profile: &Map<String, Value>,
    index: usize,
    name: &str,
    file: &Path,
) -> Result<Credentials, ChainError> {
    let field = |key: &'static str| text_field(profile, index, key, file);
    let at = ProfileAt {
        file,
        profile: name,
        line: None,
    };
    let required = |key: &'static str| at.require(field(key)?, key);

    let mode = field("mode")?.unwrap_or_default();
    let sts = match mode {
        "" | "AK" => false,
        "StsToken" => true,
        other => {
            return Err(ChainError::UnsupportedMode {
                file: file.to_path_buf(),
                profile: name.to_string(),
                mode: other.to_string(),
            });
        }
    };

    let credentials = Credentials::new(required("access_key_id")?, required("access_key_secret")?);
    if sts {
        return Ok(credentials.with_security_token(required("sts_token")?));
    }
    Ok(credentials)
}

/// A string field of a profile; absent and `null` are `None`, other types an error.
fn text_field<'p>(
    profile: &'p Map<String, Value>,
    index: usize,
    key: &'static str,
    file: &Path,
) -> Result<Option<&'p str>, ChainError> {
    match profile.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(malformed(
            file,
            format!("profiles[{index}].{key}"),
            "is not a string",
        )),
    }
}

/// A [`ChainError::MalformedConfig`].
fn malformed(file: &Path, key: String, problem: &'static str) -> ChainError {
    ChainError::MalformedConfig {
        file: file.to_path_buf(),
        key,
        problem,
    }
}
