//! What operators see: credentials from each source and in the SDKs' order, personal data
//! masked in every output, secrets in none, the summary against the report, and the
//! ledger tools on a finished run.

use std::path::Path;
use std::process::{Command, Output};

use cloudauth_batch::pii;
use cloudauth_batch::sandbox::synthetic::AccountKind;
use cloudauth_batch::sandbox::{TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET};

use crate::support::{Workspace, read_report, stderr};

const CREDENTIAL_VARIABLES: [&str; 7] = [
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CONFIG_FILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "RUST_LOG",
];

/// The binary with no credentials in its environment and `home` as its home folder.
fn bare(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloudauth-batch"));
    for name in CREDENTIAL_VARIABLES {
        command.env_remove(name);
    }
    command.env("HOME", home);
    command
}

fn run_in(command: &mut Command, spec: &Path, endpoint: &str, args: &[&str]) -> Output {
    command
        .arg("run")
        .arg(spec)
        .args(["--endpoint", endpoint, "--no-progress", "-v"])
        .args(args)
        .output()
        .unwrap()
}

fn write_cli_config(home: &Path, profiles: &[(&str, &str, &str)], current: &str) {
    let profiles: Vec<String> = profiles
        .iter()
        .map(|(name, id, secret)| {
            format!(
                r#"{{"name":"{name}","mode":"AK","access_key_id":"{id}","access_key_secret":"{secret}","region_id":"cn-hangzhou"}}"#
            )
        })
        .collect();
    let text = format!(
        r#"{{"current":"{current}","profiles":[{}]}}"#,
        profiles.join(",")
    );
    std::fs::create_dir_all(home.join(".aliyun")).unwrap();
    std::fs::write(home.join(".aliyun/config.json"), text).unwrap();
}

#[test]
fn credentials_come_from_each_source_in_the_sdks_order() {
    let work = Workspace::new(3);
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", "");
    let home = tempfile::tempdir().unwrap();
    let url = sandbox.url();
    let fresh = |output: &Output| {
        let _ = std::fs::remove_dir_all(work.path("out"));
        output.status.code()
    };

    // Nothing anywhere: an error that says where it looked.
    let output = run_in(&mut bare(home.path()), &spec, &url, &[]);
    assert_eq!(fresh(&output), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "{}",
        stderr(&output)
    );

    // The INI credentials file alone.
    std::fs::create_dir_all(home.path().join(".alibabacloud")).unwrap();
    std::fs::write(
        home.path().join(".alibabacloud/credentials"),
        format!(
            "[default]\ntype = access_key\naccess_key_id = {TEST_ACCESS_KEY_ID}\naccess_key_secret = {TEST_ACCESS_KEY_SECRET}\n"
        ),
    )
    .unwrap();
    let output = run_in(&mut bare(home.path()), &spec, &url, &[]);
    assert!(matches!(fresh(&output), Some(0 | 1)), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(".alibabacloud/credentials"),
        "{}",
        stderr(&output)
    );

    // The CLI config beats the INI file: its current profile holds a wrong key.
    write_cli_config(
        home.path(),
        &[
            ("wrong", "LTAIwrong", "wrong-secret"),
            ("right", TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET),
        ],
        "wrong",
    );
    let output = run_in(&mut bare(home.path()), &spec, &url, &[]);
    assert_eq!(fresh(&output), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"profile "wrong""#),
        "{}",
        stderr(&output)
    );

    // --profile picks another profile of it.
    let output = run_in(&mut bare(home.path()), &spec, &url, &["--profile", "right"]);
    assert!(matches!(fresh(&output), Some(0 | 1)), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"profile "right""#),
        "{}",
        stderr(&output)
    );

    // The environment beats both files.
    let mut command = bare(home.path());
    command
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET);
    let output = run_in(&mut command, &spec, &url, &[]);
    assert!(matches!(fresh(&output), Some(0 | 1)), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("environment"),
        "{}",
        stderr(&output)
    );

    // A profile named in the spec is used like --profile.
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "  concurrency: auto",
        "  concurrency: auto\n  credentials: { profile: right }",
    );
    std::fs::write(&spec, text).unwrap();
    let output = run_in(&mut bare(home.path()), &spec, &url, &[]);
    assert!(matches!(fresh(&output), Some(0 | 1)), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"profile "right""#),
        "{}",
        stderr(&output)
    );
}

/// Every name, ID number and mobile of the demo accounts.
fn personal_values(work: &Workspace) -> Vec<String> {
    let mut values = Vec::new();
    for account in &work.manifest.accounts {
        values.push(account.real_name.clone());
        values.push(account.id_number.clone());
        values.extend(account.mobile.clone());
    }
    values
}

fn everything_written(work: &Workspace, output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(output);
    for file in ["out/report.csv", "out/summary.json", "out/summary.html"] {
        text += &std::fs::read_to_string(work.path(file)).unwrap();
    }
    text
}

#[test]
fn personal_data_and_secrets_never_appear_unmasked() {
    const TOKEN: &str = "CAIS-sts-token-that-must-stay-secret";
    let work = Workspace::new(30);
    let sandbox = work.sandbox(|c| c.review_share = 0.3);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", "");
    let home = tempfile::tempdir().unwrap();

    // -vvv is the tool's most verbose level; RUST_LOG=trace also asks the HTTP libraries
    // for everything, which would include request URLs and so the SecurityToken.
    for (format, rust_log) in [("text", None), ("json", None), ("text", Some("trace"))] {
        let _ = std::fs::remove_dir_all(work.path("out"));
        let mut command = bare(home.path());
        command
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET)
            .env("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN);
        let output = match rust_log {
            // run_in adds -v, which would take precedence over RUST_LOG.
            Some(level) => command
                .env("RUST_LOG", level)
                .arg("run")
                .arg(&spec)
                .args(["--endpoint", &sandbox.url(), "--no-progress"])
                .args(["--log-format", format])
                .output()
                .unwrap(),
            None => run_in(
                &mut command,
                &spec,
                &sandbox.url(),
                &["-vvv", "--log-format", format],
            ),
        };
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{}",
            stderr(&output)
        );
        // The most verbose level the tool has: every request is logged at debug.
        assert!(stderr(&output).contains("DEBUG"), "{}", stderr(&output));
        let text = everything_written(&work, &output);
        for secret in [TEST_ACCESS_KEY_SECRET, TOKEN] {
            assert!(!text.contains(secret), "a secret was printed ({format})");
        }
        for value in personal_values(&work) {
            assert!(
                !text.contains(&value),
                "{value} printed unmasked ({format})"
            );
        }
        let check = bare(home.path()).arg("check").arg(&spec).output().unwrap();
        let mut shown = String::from_utf8_lossy(&check.stdout).into_owned() + &stderr(&check);
        if let Ok(rejects) = std::fs::read_to_string(work.path("out/report.rejects.csv")) {
            shown += &rejects;
        }
        for value in personal_values(&work) {
            assert!(!shown.contains(&value), "{value} shown by check");
        }
    }

    // The report's personal columns: masked by default, hashed or plain on request.
    let account = &work.manifest.accounts[0];
    let first = &read_report(&work.path("out/report.csv"))[0];
    assert_eq!(first["id_number"], pii::mask_id_number(&account.id_number));
    assert_eq!(first["name"], pii::mask_name(&account.real_name));

    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "report: { path: out/report.csv }",
        "report: { path: out/report.csv, pii: hash, hash_key: \"${AUDIT_KEY}\" }",
    );
    std::fs::write(&spec, &text).unwrap();
    let output = bare(home.path())
        .env("AUDIT_KEY", "audit-join-key")
        .args([
            "report",
            &work.path("out/ledger.sqlite").display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = &read_report(&work.path("out/report.csv"))[0];
    assert_eq!(
        first["id_number"],
        pii::keyed_hash(b"audit-join-key", &account.id_number)
    );
    assert!(
        !std::fs::read_to_string(work.path("out/report.csv"))
            .unwrap()
            .contains(&account.id_number)
    );

    std::fs::write(
        &spec,
        text.replace("pii: hash, hash_key: \"${AUDIT_KEY}\"", "pii: plain"),
    )
    .unwrap();
    let output = bare(home.path())
        .args([
            "report",
            &work.path("out/ledger.sqlite").display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = &read_report(&work.path("out/report.csv"))[0];
    assert_eq!(first["id_number"], account.id_number);
}

#[test]
fn the_summary_agrees_with_the_report_and_the_ledger_tools_read_a_finished_run() {
    let work = Workspace::new(40);
    let sandbox = work.sandbox(|c| c.review_share = 0.2);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", "");
    let output = crate::support::run(&spec, &sandbox.url(), &["--no-progress"]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );

    let report = read_report(&work.path("out/report.csv"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["rows"], 40);
    for outcome in ["passed", "failed", "pending", "error", "skipped"] {
        let in_report = report.iter().filter(|r| r["outcome"] == outcome).count();
        assert_eq!(summary["outcomes"][outcome], in_report, "{outcome}");
    }
    let scored = report
        .iter()
        .filter(|r| !r["authority_comparison_score"].is_empty())
        .count();
    assert_eq!(summary["authority_comparison_score"]["rows"], scored);
    let at_or_above_80 = report
        .iter()
        .filter_map(|r| r["authority_comparison_score"].parse::<f64>().ok())
        .filter(|score| *score >= 80.0)
        .count();
    let thresholds = summary["authority_comparison_score"]["thresholds"]
        .as_array()
        .unwrap();
    let eighty = thresholds
        .iter()
        .find(|t| t["score"].as_f64() == Some(80.0))
        .unwrap();
    assert_eq!(eighty["rows"], at_or_above_80, "{eighty}");
    let submissions = sandbox
        .stats()
        .action(cloudauth_batch::cloudauth::Action::SubmitMaterials)
        .arrived;
    let calls = summary["calls"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "SubmitMaterials")
        .unwrap()["calls"]
        .clone();
    assert_eq!(
        calls, submissions,
        "SubmitMaterials calls in the summary and at the sandbox"
    );
    let html = std::fs::read_to_string(work.path("out/summary.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("FAR 1/1,000"),
        "the page lacks its charts"
    );

    // `report` writes the same lines again, in another format.
    let ledger = work.path("out/ledger.sqlite");
    let output = crate::support::binary()
        .args(["report", &ledger.display().to_string(), "--out"])
        .arg(work.path("again/report.jsonl"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let again: Vec<serde_json::Value> = std::fs::read_to_string(work.path("again/report.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(again.len(), report.len());
    for (json, csv) in again.iter().zip(&report) {
        assert_eq!(json["key"], csv["key"].as_str());
        assert_eq!(json["outcome"], csv["outcome"].as_str());
    }
    assert!(work.path("again/summary.json").exists());

    // `status` tells how far the run got.
    let output = crate::support::binary()
        .args(["status", &ledger.display().to_string()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(status.contains("not running"), "{status}");
    assert!(
        status.contains("40 of 40 input rows have an outcome"),
        "{status}"
    );
    let passed = report.iter().filter(|r| r["outcome"] == "passed").count();
    assert!(status.contains(&format!("passed   {passed}")), "{status}");
    let skipped = work.manifest.count(AccountKind::MissingPhoto);
    assert!(status.contains(&format!("skipped  {skipped}")), "{status}");
}

#[test]
fn completions_and_help_are_there_for_every_command() {
    let output = crate::support::binary()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let script = String::from_utf8_lossy(&output.stdout);
    for command in [
        "run",
        "check",
        "report",
        "status",
        "completions",
        "sandbox",
        "samples",
    ] {
        assert!(script.contains(command), "completions lack {command}");
        let help = crate::support::binary()
            .args([command, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("Example"),
            "{command} --help has no example:\n{text}"
        );
    }
    // Global flags are accepted after the subcommand too.
    let output = crate::support::binary()
        .args(["status", "--log-format", "json", "-q", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
