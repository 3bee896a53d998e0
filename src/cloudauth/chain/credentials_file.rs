//! The third link of the chain: a section of the SDKs' INI file `~/.alibabacloud/credentials`.
//!
//! A section is a profile: `type = access_key` with `access_key_id` and
//! `access_key_secret`, or `type = sts` with a `security_token` as well. The SDKs know
//! more types (`ram_role_arn`, `ecs_ram_role`, ...); those need a call to STS or to the
//! instance metadata service first, which this tool does not make, so they are refused by
//! name.

use super::ini::{self, Section};
use super::{ChainError, Choice, Location, Place, ProfileAt, Source, read_optional};
use crate::cloudauth::Credentials;

/// The key pair of the section the choice (or `default`) selects, if the file exists and
/// has it. A missing file or section adds to `searched` and yields `None`.
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
    let sections = ini::parse(&text).map_err(|error| ChainError::MalformedIni {
        file: file.clone(),
        line: error.line,
        problem: error.problem,
    })?;
    let choice = named.cloned().unwrap_or_else(Choice::default_profile);

    let Some(section) = sections.iter().find(|s| s.name == choice.name) else {
        searched.push(Place::NoProfile {
            file: file.clone(),
            profile: choice.name,
        });
        return Ok(None);
    };

    let at = ProfileAt {
        file,
        profile: &section.name,
        line: Some(section.line),
    };
    let credentials = credentials_of(section, &at)?;
    let source = Source::CredentialsFile {
        file: file.clone(),
        profile: choice.name,
    };
    Ok(Some((credentials, source)))
}

/// The key pair of one section, by its type.
fn credentials_of(section: &Section, at: &ProfileAt<'_>) -> Result<Credentials, ChainError> {
    let value = |key: &str| section.get(key).map(|entry| entry.value.as_str());
    let required = |key: &'static str| at.require(value(key), key);

    let Some(kind) = section.get("type") else {
        return Err(at.incomplete("type"));
    };
    let sts = match kind.value.as_str() {
        "access_key" => false,
        "sts" => true,
        other => {
            return Err(ChainError::UnsupportedType {
                file: at.file.to_path_buf(),
                profile: section.name.clone(),
                line: kind.line,
                kind: other.to_string(),
            });
        }
    };

    let credentials = Credentials::new(required("access_key_id")?, required("access_key_secret")?);
    if sts {
        return Ok(credentials.with_security_token(required("security_token")?));
    }
    Ok(credentials)
}
