//! Scale-out: shards in parallel under one account quota, and merging their ledgers.

use std::collections::HashMap;
use std::process::Stdio;

use cloudauth_batch::cloudauth::Action;

use crate::support::{Workspace, binary, read_report, stderr};

const SHARDS: u32 = 3;
const QUOTA: u32 = 30;

#[test]
fn shards_in_parallel_report_every_row_once_within_the_account_quota() {
    let work = Workspace::new(90);
    let sandbox = work.sandbox(|c| {
        c.quotas.insert(Action::SubmitMaterials, QUOTA);
        c.quotas.insert(Action::GetVerifyToken, QUOTA);
        c.review_share = 0.2;
    });
    let rate = format!("{QUOTA}/s");
    let spec = work.spec("spec.yaml", "data/accounts.csv", &rate, "");

    let children: Vec<_> = (0..SHARDS)
        .map(|index| {
            binary()
                .arg("run")
                .arg(&spec)
                .args(["--endpoint", &sandbox.url(), "--no-progress"])
                .arg(format!("--shard={index}/{SHARDS}"))
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{}",
            stderr(&output)
        );
    }

    // Together the shard reports hold every input row exactly once.
    let mut seen: HashMap<String, u32> = HashMap::new();
    for index in 0..SHARDS {
        let path = work.path(&format!("out/report.shard-{index}-of-{SHARDS}.csv"));
        for line in read_report(&path) {
            *seen.entry(line["key"].clone()).or_default() += 1;
        }
        assert!(
            work.path(&format!("out/ledger.shard-{index}-of-{SHARDS}.sqlite"))
                .exists()
        );
        assert!(
            work.path(&format!("out/summary.shard-{index}-of-{SHARDS}.json"))
                .exists()
        );
    }
    assert_eq!(seen.len(), 90);
    assert!(seen.values().all(|&n| n == 1), "a row reported twice");

    // The ledger tools know a shard's ledger holds its own rows only.
    let first_ledger = work.path(&format!("out/ledger.shard-0-of-{SHARDS}.sqlite"));
    let first_report = work.path(&format!("out/report.shard-0-of-{SHARDS}.csv"));
    let keys_of =
        |path| -> Vec<String> { read_report(path).iter().map(|l| l["key"].clone()).collect() };
    let written = keys_of(&first_report);
    std::fs::remove_file(&first_report).unwrap();
    let output = binary().arg("report").arg(&first_ledger).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(keys_of(&first_report), written, "report of a shard ledger");
    assert!(
        !work.path("out/report.csv").exists(),
        "the unsharded report was written"
    );
    let output = binary().arg("status").arg(&first_ledger).output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    let expected = format!(
        "{n} of {n} input rows have an outcome (100.0 %)",
        n = written.len()
    );
    assert!(status.contains(&expected), "{status}");

    let stats = sandbox.stats();
    for (ticket, submissions) in &stats.submissions_per_ticket {
        assert!(*submissions <= 1, "{ticket} submitted {submissions} times");
    }
    let submit = stats.action(Action::SubmitMaterials);
    assert!(
        submit.peak_arrivals_per_second <= QUOTA,
        "{} SubmitMaterials in one second, over the quota of {QUOTA}",
        submit.peak_arrivals_per_second
    );
    assert_eq!(
        submit.throttled, 0,
        "the shards together exceeded the quota"
    );

    // Merging gives one report of every row, in input order, and one summary.
    let ledgers: Vec<String> = (0..SHARDS)
        .map(|i| {
            work.path(&format!("out/ledger.shard-{i}-of-{SHARDS}.sqlite"))
                .display()
                .to_string()
        })
        .collect();
    let output = binary()
        .arg("merge")
        .args(&ledgers)
        .arg("--out")
        .arg(work.path("merged/report.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let merged = read_report(&work.path("merged/report.csv"));
    let keys: Vec<&str> = merged.iter().map(|l| l["key"].as_str()).collect();
    let expected: Vec<&str> = work
        .manifest
        .accounts
        .iter()
        .map(|a| a.account_id.as_str())
        .collect();
    assert_eq!(keys, expected);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path("merged/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["rows"], 90);
    assert_eq!(summary["calls"]["runs"], SHARDS);

    // The same shard twice overlaps; a ledger of another spec does not belong.
    let output = binary()
        .arg("merge")
        .args([&ledgers[0], &ledgers[0]])
        .arg("--out")
        .arg(work.path("merged/twice.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("overlap"), "{}", stderr(&output));

    let other = work.spec("other.yaml", "data/accounts.csv", "20/s", "");
    let text = std::fs::read_to_string(&other)
        .unwrap()
        .replace("out/ledger.sqlite", "other/ledger.sqlite")
        .replace("out/report.csv", "other/report.csv");
    std::fs::write(&other, text).unwrap();
    let output = binary()
        .arg("run")
        .arg(&other)
        .args([
            "--endpoint",
            &sandbox.url(),
            "--no-progress",
            "--limit",
            "3",
            "--shard=1/3",
        ])
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let output = binary()
        .arg("merge")
        .args([&ledgers[0]])
        .arg(work.path("other/ledger.shard-1-of-3.sqlite"))
        .arg("--out")
        .arg(work.path("merged/mixed.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("different spec"),
        "{}",
        stderr(&output)
    );
}
