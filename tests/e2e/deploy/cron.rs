//! `deploy/cron/cloudauth-batch.sh` run by bash on the real binary against the sandbox:
//! credentials from its env file, the tool's exit code turned into the operator's line.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};

use cloudauth_batch::lock::{RunLock, lock_path};
use cloudauth_batch::sandbox::{TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET};

use crate::support::{Workspace, stderr};

fn script() -> PathBuf {
    super::deploy_dir().join("cron/cloudauth-batch.sh")
}

/// A workspace with a spec, a sandbox and an env file of mode `mode`.
struct CronSetup {
    work: Workspace,
    sandbox: cloudauth_batch::sandbox::Sandbox,
    spec: PathBuf,
    env_file: PathBuf,
}

impl CronSetup {
    fn new(secret: &str, mode: u32) -> CronSetup {
        let work = Workspace::new(8);
        let sandbox = work.sandbox(|_| {});
        let spec = work.spec("spec.yaml", "data/accounts.csv", "40/s", "");
        let env_file = work.path("credentials.env");
        let text = format!(
            "# written by the test\nALIBABA_CLOUD_ACCESS_KEY_ID={TEST_ACCESS_KEY_ID}\n\
             ALIBABA_CLOUD_ACCESS_KEY_SECRET={secret}\n"
        );
        std::fs::write(&env_file, text).unwrap();
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(mode)).unwrap();
        CronSetup {
            work,
            sandbox,
            spec,
            env_file,
        }
    }

    fn log_file(&self) -> PathBuf {
        self.work.path("log/run.log")
    }

    /// Runs the script as cron would, with no credentials in its environment.
    fn run(&self) -> Output {
        Command::new("bash")
            .arg(script())
            .arg(&self.spec)
            .args(["--endpoint", &self.sandbox.url()])
            .env("CLOUDAUTH_BATCH", env!("CARGO_BIN_EXE_cloudauth-batch"))
            .env("CLOUDAUTH_ENV_FILE", &self.env_file)
            .env("CLOUDAUTH_LOG_FILE", self.log_file())
            .env("CLOUDAUTH_MAX_DURATION", "2m")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap()
    }

    /// The last line of the log: the outcome.
    fn outcome(&self) -> String {
        self.log().lines().last().unwrap_or_default().to_string()
    }
}

fn ledger(work: &Workspace) -> PathBuf {
    work.path("out/ledger.sqlite")
}

#[test]
fn the_cron_script_is_valid_bash() {
    let output = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();

    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn the_cron_script_runs_with_the_env_file_credentials_and_logs_the_outcome() {
    let setup = CronSetup::new(TEST_ACCESS_KEY_SECRET, 0o600);

    let output = setup.run();

    // Demo data holds rows without a photo, which end without a verdict: exit 1.
    let code = output.status.code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}: {}", setup.log());
    assert!(setup.work.path("out/report.csv").exists());
    assert!(
        setup.sandbox.stats().verdicts.len() > 1,
        "the sandbox saw no submission"
    );
    let outcome = setup.outcome();
    assert!(outcome.contains("done:"), "{outcome}");
    assert!(
        outcome.ends_with(&format!("(exit {})", code.unwrap())),
        "{outcome}"
    );
    // The tool's own summary line reaches the log; cron's mail stays silent.
    assert!(setup.log().contains("rows:"), "{}", setup.log());
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    assert!(!setup.log().contains(TEST_ACCESS_KEY_SECRET));
}

#[test]
fn refused_credentials_reach_the_log_and_the_operators_mail() {
    let setup = CronSetup::new("not-the-secret", 0o600);

    let output = setup.run();

    assert_eq!(output.status.code(), Some(3), "{}", setup.log());
    assert!(
        setup.outcome().contains("refused the credentials"),
        "{}",
        setup.log()
    );
    assert!(stderr(&output).contains("refused the credentials"));
}

#[test]
fn a_run_that_finds_its_ledger_held_is_logged_as_skipped() {
    let setup = CronSetup::new(TEST_ACCESS_KEY_SECRET, 0o600);
    let held = RunLock::acquire(&ledger(&setup.work)).unwrap();

    let output = setup.run();

    assert_eq!(output.status.code(), Some(6), "{}", setup.log());
    assert!(setup.outcome().contains("skipped"), "{}", setup.log());
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    drop(held);
}

#[test]
fn the_cron_script_refuses_an_env_file_others_can_read() {
    let setup = CronSetup::new(TEST_ACCESS_KEY_SECRET, 0o644);

    let output = setup.run();

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("mode 600"), "{}", stderr(&output));
    // The tool takes its ledger's lock first thing; no lock file, no run.
    let lock = lock_path(&ledger(&setup.work));
    assert!(!lock.exists(), "the tool was started");
}
