//! Tests of the whole chain, each with its own home directory and environment.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

/// A secret no output may contain.
const SECRET: &str = "s3cr3t-hush";
/// A security token no output may contain.
const TOKEN: &str = "tok-hush";

/// A home directory, an environment, and the two files under the home.
struct Fixture {
    home: tempfile::TempDir,
    vars: HashMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            home: tempfile::tempdir().unwrap(),
            vars: HashMap::new(),
        }
    }

    fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    fn env_keys(self, id: &str) -> Self {
        self.var(ENV_ACCESS_KEY_ID, id)
            .var(ENV_ACCESS_KEY_SECRET, SECRET)
    }

    fn cli(self, json: &str) -> Self {
        write(&self.cli_file(), json);
        self
    }

    fn ini(self, text: &str) -> Self {
        write(&self.ini_file(), text);
        self
    }

    fn cli_file(&self) -> PathBuf {
        self.home.path().join(CLI_CONFIG_PATH)
    }

    fn ini_file(&self) -> PathBuf {
        self.home.path().join(CREDENTIALS_FILE_PATH)
    }

    fn resolve(&self, profile: Option<&str>) -> Result<(Credentials, Source), ChainError> {
        let env = |name: &str| self.vars.get(name).cloned();
        resolve(&Lookup {
            profile,
            env: &env,
            home: Some(self.home.path().to_path_buf()),
        })
    }

    /// The AccessKeyId found, which the fixtures make unique per profile.
    fn id(&self, profile: Option<&str>) -> String {
        self.resolve(profile).unwrap().0.access_key_id
    }

    fn error(&self, profile: Option<&str>) -> String {
        let error = self.resolve(profile).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
        shown
    }
}

fn write(file: &std::path::Path, text: &str) {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// A CLI config with `current` and profiles given as JSON objects.
fn cli_json(current: &str, profiles: &[String]) -> String {
    format!(
        r#"{{"current": "{current}", "profiles": [{}], "meta_path": ""}}"#,
        profiles.join(", ")
    )
}

/// An `AK` profile whose AccessKeyId is `cli-<name>`.
fn ak(name: &str) -> String {
    format!(
        r#"{{"name": "{name}", "mode": "AK", "access_key_id": "cli-{name}",
            "access_key_secret": "{SECRET}", "sts_token": "", "region_id": "cn-hangzhou"}}"#
    )
}

/// An `access_key` section whose AccessKeyId is `ini-<name>`.
fn section(name: &str) -> String {
    format!(
        "[{name}]\ntype = access_key\naccess_key_id = ini-{name}\naccess_key_secret = {SECRET}\n"
    )
}

#[test]
fn the_environment_alone_yields_its_key_and_token() {
    let fixture = Fixture::new().env_keys("env-id");
    let (credentials, source) = fixture.resolve(None).unwrap();
    assert_eq!(credentials.access_key_id, "env-id");
    assert_eq!(credentials.secret(), SECRET);
    assert_eq!(credentials.security_token(), None);
    assert_eq!(source, Source::Environment);
    assert_eq!(
        source.to_string(),
        "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"
    );

    let fixture = fixture.var(ENV_SECURITY_TOKEN, TOKEN);
    let (credentials, _) = fixture.resolve(None).unwrap();
    assert_eq!(credentials.security_token(), Some(TOKEN));
}

#[test]
fn a_half_set_environment_names_the_missing_variable() {
    let only_id = Fixture::new().var(ENV_ACCESS_KEY_ID, "env-id");
    let shown = only_id.error(None);
    assert!(
        shown.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"),
        "{shown}"
    );

    let only_secret = Fixture::new().var(ENV_ACCESS_KEY_SECRET, SECRET);
    let shown = only_secret.error(None);
    assert!(
        shown.contains("ALIBABA_CLOUD_ACCESS_KEY_ID is not"),
        "{shown}"
    );

    let only_token = Fixture::new().var(ENV_SECURITY_TOKEN, TOKEN);
    let shown = only_token.error(None);
    assert!(
        shown.contains("ALIBABA_CLOUD_SECURITY_TOKEN is set but"),
        "{shown}"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let fixture = Fixture::new()
        .var(ENV_ACCESS_KEY_ID, "")
        .var(ENV_ACCESS_KEY_SECRET, "")
        .var(ENV_PROFILE, "")
        .ini(&section("default"));
    assert_eq!(fixture.id(Some("")), "ini-default");
}

#[test]
fn a_cli_profile_alone_yields_its_key() {
    let fixture = Fixture::new().cli(&cli_json("main", &[ak("main")]));
    let (credentials, source) = fixture.resolve(None).unwrap();
    assert_eq!(credentials.access_key_id, "cli-main");
    assert_eq!(credentials.secret(), SECRET);
    assert_eq!(credentials.security_token(), None);
    let file = fixture.cli_file();
    assert_eq!(
        source.to_string(),
        format!("profile \"main\" of {}", file.display())
    );
    assert_eq!(
        source,
        Source::CliProfile {
            file,
            profile: "main".into()
        }
    );
}

#[test]
fn a_cli_sts_profile_carries_its_token_and_a_profile_without_mode_is_ak() {
    let sts = format!(
        r#"{{"name": "sts", "mode": "StsToken", "access_key_id": "STS.id",
            "access_key_secret": "{SECRET}", "sts_token": "{TOKEN}"}}"#
    );
    let bare = format!(
        r#"{{"name": "bare", "access_key_id": "bare-id", "access_key_secret": "{SECRET}"}}"#
    );
    let fixture = Fixture::new().cli(&cli_json("sts", &[sts, bare]));

    let (credentials, _) = fixture.resolve(None).unwrap();
    assert_eq!(credentials.access_key_id, "STS.id");
    assert_eq!(credentials.security_token(), Some(TOKEN));

    let (credentials, _) = fixture.resolve(Some("bare")).unwrap();
    assert_eq!(credentials.access_key_id, "bare-id");
    assert_eq!(credentials.security_token(), None);
}

#[test]
fn a_credentials_file_alone_yields_access_key_and_sts_sections() {
    let sts = format!(
        "[temp]\ntype = sts\naccess_key_id = STS.id\naccess_key_secret = {SECRET}\n\
         security_token = {TOKEN}\n"
    );
    let fixture = Fixture::new().ini(&format!("{}\n{sts}", section("default")));

    let (credentials, source) = fixture.resolve(None).unwrap();
    assert_eq!(credentials.access_key_id, "ini-default");
    assert_eq!(credentials.secret(), SECRET);
    assert_eq!(
        source,
        Source::CredentialsFile {
            file: fixture.ini_file(),
            profile: "default".into()
        }
    );

    let (credentials, _) = fixture.resolve(Some("temp")).unwrap();
    assert_eq!(credentials.access_key_id, "STS.id");
    assert_eq!(credentials.security_token(), Some(TOKEN));
}

#[test]
fn the_environment_beats_the_cli_config_which_beats_the_credentials_file() {
    let fixture = Fixture::new()
        .cli(&cli_json("default", &[ak("default")]))
        .ini(&section("default"));
    assert_eq!(fixture.id(None), "cli-default");

    let fixture = fixture.env_keys("env-id");
    assert_eq!(fixture.id(None), "env-id");

    std::fs::remove_file(fixture.cli_file()).unwrap();
    let fixture = Fixture {
        vars: HashMap::new(),
        ..fixture
    };
    assert_eq!(fixture.id(None), "ini-default");
}

#[test]
fn a_profile_argument_is_not_replaced_by_keys_in_the_environment() {
    let fixture = Fixture::new()
        .env_keys("env-id")
        .cli(&cli_json("default", &[ak("default"), ak("prod")]));
    assert_eq!(fixture.id(Some("prod")), "cli-prod");

    // A profile named only by the environment does not outrank the environment's keys,
    // as in the SDKs.
    let fixture = fixture.var(ENV_PROFILE, "prod");
    assert_eq!(fixture.id(None), "env-id");
}

#[test]
fn cli_profiles_are_chosen_by_argument_then_variable_then_current_then_default() {
    let all = [ak("arg"), ak("var"), ak("cur"), ak("default")];
    let fixture = Fixture::new()
        .var(ENV_PROFILE, "var")
        .cli(&cli_json("cur", &all));
    assert_eq!(fixture.id(Some("arg")), "cli-arg");
    assert_eq!(fixture.id(None), "cli-var");

    let fixture = Fixture {
        vars: HashMap::new(),
        ..fixture
    };
    assert_eq!(fixture.id(None), "cli-cur");

    let fixture = fixture.cli(&cli_json("", &all));
    assert_eq!(fixture.id(None), "cli-default");
}

#[test]
fn credentials_file_sections_are_chosen_by_argument_then_variable_then_default() {
    let text = ["arg", "var", "default"].map(section).join("\n");
    let fixture = Fixture::new().var(ENV_PROFILE, "var").ini(&text);
    assert_eq!(fixture.id(Some("arg")), "ini-arg");
    assert_eq!(fixture.id(None), "ini-var");

    let fixture = Fixture {
        vars: HashMap::new(),
        ..fixture
    };
    assert_eq!(fixture.id(None), "ini-default");
}

#[test]
fn a_named_profile_missing_from_the_cli_config_is_looked_for_in_the_credentials_file() {
    let fixture = Fixture::new()
        .cli(&cli_json("default", &[ak("default")]))
        .ini(&format!("{}\n{}", section("default"), section("ci")));
    assert_eq!(fixture.id(Some("ci")), "ini-ci");
}

#[test]
fn a_named_profile_in_neither_file_is_an_error_not_a_fallback() {
    let fixture = Fixture::new()
        .cli(&cli_json("default", &[ak("default")]))
        .ini(&section("default"));

    let shown = fixture.error(Some("prod"));
    assert!(
        shown.contains("profile \"prod\" (named by --profile"),
        "{shown}"
    );
    assert!(shown.contains(&format!(
        "{} (no profile \"prod\")",
        fixture.cli_file().display()
    )));
    assert!(shown.contains(&format!(
        "{} (no profile \"prod\")",
        fixture.ini_file().display()
    )));

    let fixture = fixture.var(ENV_PROFILE, "stage");
    let shown = fixture.error(None);
    assert!(
        shown.contains("profile \"stage\" (named by ALIBABA_CLOUD_PROFILE)"),
        "{shown}"
    );
    assert!(!shown.contains("the environment"), "{shown}");
}

#[test]
fn a_current_profile_missing_from_the_cli_config_is_an_error() {
    let fixture = Fixture::new()
        .cli(&cli_json("gone", &[ak("default")]))
        .ini(&section("default"));
    let shown = fixture.error(None);
    assert!(
        shown.contains("profile \"gone\" (the current profile"),
        "{shown}"
    );
}

#[test]
fn an_unsupported_cli_mode_is_named_with_the_supported_ones() {
    let role = format!(
        r#"{{"name": "role", "mode": "RamRoleArn", "access_key_id": "id",
            "access_key_secret": "{SECRET}", "ram_role_arn": "acs:ram::1:role/x"}}"#
    );
    let fixture = Fixture::new().cli(&cli_json("role", &[role]));
    let shown = fixture.error(None);
    assert!(shown.contains("profile \"role\""), "{shown}");
    assert!(
        shown.contains("mode RamRoleArn, which is not supported"),
        "{shown}"
    );
    assert!(shown.contains("supported modes: AK, StsToken"), "{shown}");
}

#[test]
fn an_unsupported_credentials_file_type_is_named_with_its_line() {
    let fixture = Fixture::new().ini("[default]\n\ntype = ecs_ram_role\nrole_name = x\n");
    let shown = fixture.error(None);
    assert!(
        shown.contains(&fixture.ini_file().display().to_string()),
        "{shown}"
    );
    assert!(
        shown.contains("line 3: type = ecs_ram_role is not supported"),
        "{shown}"
    );
    assert!(
        shown.contains("supported types: access_key, sts"),
        "{shown}"
    );
}

#[test]
fn incomplete_profiles_name_the_missing_field() {
    let no_secret = r#"{"name": "default", "mode": "AK", "access_key_id": "id",
                        "access_key_secret": ""}"#;
    let fixture = Fixture::new().cli(&cli_json("default", &[no_secret.into()]));
    let shown = fixture.error(None);
    assert!(shown.contains("profile \"default\""), "{shown}");
    assert!(shown.contains("has no access_key_secret"), "{shown}");

    let no_token = format!(
        "# team keys\n[default]\ntype = sts\naccess_key_id = id\naccess_key_secret = {SECRET}\n"
    );
    let fixture = Fixture::new().ini(&no_token);
    let shown = fixture.error(None);
    assert!(shown.contains(", line 2 has no security_token"), "{shown}");

    let fixture = Fixture::new().ini("[default]\naccess_key_id = id\n");
    assert!(fixture.error(None).contains("has no type"));
}

#[test]
fn a_malformed_cli_config_is_named_by_file_and_position_without_its_content() {
    let broken = format!("{{\"profiles\": [{{\"access_key_secret\": \"{SECRET}\" \"x\"}}]}}");
    let fixture = Fixture::new().cli(&broken);
    let shown = fixture.error(None);
    assert!(
        shown.contains(&fixture.cli_file().display().to_string()),
        "{shown}"
    );
    assert!(shown.contains("is not valid JSON"), "{shown}");
    assert!(shown.contains("line 1, column"), "{shown}");

    let mistyped = format!(
        r#"{{"profiles": [{{"name": "default", "access_key_id": "id",
            "access_key_secret": ["{SECRET}"]}}]}}"#
    );
    let fixture = Fixture::new().cli(&mistyped);
    let shown = fixture.error(None);
    assert!(
        shown.contains("profiles[0].access_key_secret is not a string"),
        "{shown}"
    );

    let fixture = Fixture::new().cli(&format!("[\"{SECRET}\"]"));
    assert!(
        fixture
            .error(None)
            .contains("the top level is not a JSON object")
    );
}

#[test]
fn a_malformed_credentials_file_is_named_by_file_and_line_without_its_content() {
    let fixture = Fixture::new().ini(&format!("[default]\ntype = access_key\n{SECRET}\n"));
    let shown = fixture.error(None);
    let expected = format!(
        "{}, line 3: expected `key = value`",
        fixture.ini_file().display()
    );
    assert!(shown.contains(&expected), "{shown}");
}

#[test]
fn when_nothing_yields_credentials_the_error_lists_every_place_looked_at() {
    let fixture = Fixture::new().ini(&section("other"));
    let shown = fixture.error(None);
    assert!(
        shown.contains("the environment (ALIBABA_CLOUD_ACCESS_KEY_ID and"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{} (no such file)", fixture.cli_file().display())));
    assert!(shown.contains(&format!(
        "{} (no profile \"default\")",
        fixture.ini_file().display()
    )));
    assert!(shown.contains("aliyun configure"), "{shown}");

    let env = |_: &str| None;
    let homeless = Lookup {
        profile: None,
        env: &env,
        home: None,
    };
    let shown = resolve(&homeless).unwrap_err().to_string();
    assert!(
        shown.contains("~/.aliyun/config.json (no home directory"),
        "{shown}"
    );
    assert!(
        shown.contains("~/.alibabacloud/credentials (no home directory"),
        "{shown}"
    );
}

#[test]
fn variables_move_both_files_and_a_moved_file_must_exist() {
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("cli.json");
    let ini = elsewhere.path().join("keys.ini");
    write(&config, &cli_json("moved", &[ak("moved")]));
    write(&ini, &section("ci"));

    let fixture = Fixture::new()
        .cli(&cli_json("default", &[ak("default")]))
        .var(ENV_CONFIG_FILE, config.to_str().unwrap())
        .var(ENV_CREDENTIALS_FILE, ini.to_str().unwrap());
    assert_eq!(fixture.id(None), "cli-moved");
    assert_eq!(fixture.id(Some("ci")), "ini-ci");

    let fixture = fixture.var(ENV_CONFIG_FILE, "/nonexistent/cli.json");
    let shown = fixture.error(None);
    assert!(
        shown.contains("ALIBABA_CLOUD_CONFIG_FILE names /nonexistent/cli.json"),
        "{shown}"
    );
}

#[test]
fn results_never_show_the_secret_or_the_token() {
    let sts = format!(
        r#"{{"name": "default", "mode": "StsToken", "access_key_id": "STS.id",
            "access_key_secret": "{SECRET}", "sts_token": "{TOKEN}"}}"#
    );
    let cli = Fixture::new().cli(&cli_json("default", &[sts]));
    let ini = Fixture::new().ini(&format!(
        "[default]\ntype = sts\naccess_key_id = STS.id\naccess_key_secret = {SECRET}\n\
         security_token = {TOKEN}\n"
    ));
    let env = Fixture::new()
        .env_keys("env-id")
        .var(ENV_SECURITY_TOKEN, TOKEN);

    for fixture in [cli, ini, env] {
        let result = fixture.resolve(None);
        let (credentials, source) = result.as_ref().unwrap();
        assert_eq!(credentials.security_token(), Some(TOKEN));
        let shown = format!("{result:?} {source}");
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    }
}

#[test]
fn the_secret_variables_are_the_secret_and_the_token() {
    assert!(SECRET_ENV_VARS.contains(&ENV_ACCESS_KEY_SECRET));
    assert!(SECRET_ENV_VARS.contains(&ENV_SECURITY_TOKEN));
    assert!(!SECRET_ENV_VARS.contains(&ENV_ACCESS_KEY_ID));
}
