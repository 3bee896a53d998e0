//! Helpers for the end-to-end tests: demo data in a temporary folder, a sandbox that
//! knows its people, and the real binary run on a spec.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cloudauth_batch::sandbox::authority::Authority;
use cloudauth_batch::sandbox::synthetic::{DemoManifest, DemoOptions, write_demo};
use cloudauth_batch::sandbox::{
    Sandbox, SandboxConfig, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET,
};

/// A temporary folder holding demo data under `data/` and a spec beside it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub manifest: DemoManifest,
}

impl Workspace {
    /// Generates `accounts` demo accounts.
    pub fn new(accounts: usize) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let options = DemoOptions {
            accounts,
            id_front_prefix: "data/images/id_front".into(),
            ..DemoOptions::default()
        };
        let manifest = write_demo(&dir.path().join("data"), &options).unwrap();
        Workspace { dir, manifest }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a spec whose rates and source can be varied.
    pub fn spec(&self, name: &str, source: &str, rate: &str, extra: &str) -> PathBuf {
        let text = format!(
            "version: 1
name: e2e
service:
  endpoint: sandbox
  biz: RPBasicTest
  rate: {{ GetVerifyToken: {rate}, SubmitMaterials: {rate}, GetStatus: 50/s }}
  concurrency: auto
source: {{ path: {source}, key: account_id }}
ticket_id: \"e2e-{{account_id}}\"
materials:
  Name: {{ column: real_name }}
  IdentificationNumber: {{ column: id_number }}
  Mobile: {{ column: mobile, required: false }}
  FacePic: {{ file: \"data/images/faces/{{account_id}}.jpg\" }}
  IdCardFrontPic: {{ column: id_front, required: false }}
polling: {{ interval: 200ms, timeout: 30s }}
report: {{ path: out/report.csv }}
ledger: {{ path: out/ledger.sqlite }}
{extra}"
        );
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A sandbox that knows the demo's people.
    pub fn sandbox(&self, adjust: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
        let mut config = SandboxConfig {
            authority: Authority::load(&self.path("data/authority.csv")).unwrap(),
            review_delay: std::time::Duration::from_millis(500),
            ..SandboxConfig::default()
        };
        adjust(&mut config);
        Sandbox::start(config).unwrap()
    }
}

/// The binary under test, with the sandbox's test key as its credentials.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloudauth-batch"));
    command
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET);
    command
}

/// Runs `run SPEC --endpoint URL` plus `args` to its end.
pub fn run(spec: &Path, endpoint: &str, args: &[&str]) -> Output {
    binary()
        .arg("run")
        .arg(spec)
        .args(["--endpoint", endpoint])
        .args(args)
        .output()
        .unwrap()
}

/// Starts `run SPEC --endpoint URL` and kills it (SIGKILL) after `kill_after`.
pub fn run_and_kill(spec: &Path, endpoint: &str, kill_after: std::time::Duration) {
    let mut child = binary()
        .arg("run")
        .arg(spec)
        .args(["--endpoint", endpoint])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(kill_after);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The report's rows as maps from column to value.
pub fn read_report(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Text of a process's stderr, for assertion messages.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
