//! The pipeline end to end: the real binary, fixture specs, and a sandbox in this process
//! whose stats say what the service saw and decided.

use std::collections::HashMap;
use std::time::Duration;

use cloudauth_batch::cloudauth::Action;
use cloudauth_batch::sandbox::Faults;
use cloudauth_batch::sandbox::synthetic::AccountKind;

use crate::support::{Workspace, read_report, run, run_and_kill, stderr};

const BIZ: &str = "RPBasicTest";

fn expected_outcome(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Pass => "passed",
        AccountKind::FaceMismatch | AccountKind::NameMismatch | AccountKind::UnknownId => "failed",
        AccountKind::MissingPhoto => "skipped",
    }
}

/// Every report row against the manifest and against what the sandbox decided.
fn check_report(
    work: &Workspace,
    report: &[HashMap<String, String>],
    stats: &cloudauth_batch::sandbox::Stats,
) {
    assert_eq!(report.len(), work.manifest.accounts.len());
    for (i, (line, account)) in report.iter().zip(&work.manifest.accounts).enumerate() {
        assert_eq!(line["row"], (i + 1).to_string());
        assert_eq!(line["key"], account.account_id);
        let context = format!("{line:?} for {:?}", account.kind);
        assert_eq!(line["outcome"], expected_outcome(account.kind), "{context}");
        let ticket = format!("e2e-{}", account.account_id);
        match stats.verdict(BIZ, &ticket) {
            Some(verdict) => {
                assert_eq!(
                    line["status_code"],
                    verdict.status_code.to_string(),
                    "{context}"
                );
                let number = |column: &str| line[column].parse::<f64>().ok();
                let score = number("authority_comparison_score");
                assert_eq!(score, verdict.authority_comparison_score, "{context}");
                let similarity = number("similarity_score");
                assert_eq!(similarity, verdict.similarity_score, "{context}");
            }
            None => assert_eq!(line["status_code"], "", "{context}"),
        }
        if matches!(
            account.kind,
            AccountKind::NameMismatch | AccountKind::UnknownId
        ) {
            assert_eq!(line["error_code"], "Error.RealNameCheckFail", "{context}");
        }
        if account.kind == AccountKind::MissingPhoto {
            assert!(
                line["error_message"].contains("FacePic is missing"),
                "{context}"
            );
        }
    }
}

fn assert_no_ticket_submitted_twice(stats: &cloudauth_batch::sandbox::Stats) {
    let twice: Vec<_> = stats
        .submissions_per_ticket
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    assert!(twice.is_empty(), "submitted more than once: {twice:?}");
    assert_eq!(stats.duplicate_submissions, 0);
}

#[test]
fn a_csv_run_reports_every_row_as_the_sandbox_decided() {
    let work = Workspace::new(40);
    let sandbox = work.sandbox(|c| c.review_share = 0.2);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "40/s", "");

    let output = run(&spec, &sandbox.url(), &[]);
    // Missing photos are skipped, so not every row has a verdict.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let stats = sandbox.stats();
    check_report(&work, &read_report(&work.path("out/report.csv")), &stats);
    assert_no_ticket_submitted_twice(&stats);
    assert!(
        stats.verdicts.values().any(|v| v.reviewed),
        "no row went through review"
    );
}

#[test]
fn rows_wait_for_room_under_a_tight_in_flight_budget_and_all_get_verdicts() {
    // 1 KiB is less than any row's photos: each row then goes alone, and none is stuck.
    let work = Workspace::new(12);
    let sandbox = work.sandbox(|c| {
        c.faults = Faults {
            latency_mean_ms: 20,
            ..Faults::default()
        }
    });
    let extra = "images: { in_flight: 1KiB }";
    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", extra);

    let output = run(&spec, &sandbox.url(), &[]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let stats = sandbox.stats();
    check_report(&work, &read_report(&work.path("out/report.csv")), &stats);
    assert_no_ticket_submitted_twice(&stats);
}

#[test]
fn a_parquet_input_gives_the_same_report_as_its_csv() {
    use polars::prelude::*;

    let work = Workspace::new(24);
    let mut frame = csv_as_frame(&work.path("data/accounts.csv"));
    let parquet = std::fs::File::create(work.path("data/accounts.parquet")).unwrap();
    ParquetWriter::new(parquet).finish(&mut frame).unwrap();
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.parquet", "40/s", "");

    let output = run(
        &spec,
        &sandbox.url(),
        &[
            "--report",
            work.path("out/report.parquet").to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let output = run(
        &spec,
        &sandbox.url(),
        &["--report", work.path("out/report.csv").to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    check_report(
        &work,
        &read_report(&work.path("out/report.csv")),
        &sandbox.stats(),
    );
    let parquet = std::fs::File::open(work.path("out/report.parquet")).unwrap();
    let frame = ParquetReader::new(parquet).finish().unwrap();
    assert_eq!(frame.height(), 24);
    let outcomes = frame.column("outcome").unwrap().str().unwrap().clone();
    let parquet_outcomes: Vec<String> = outcomes
        .iter()
        .map(|o| o.unwrap_or("").to_string())
        .collect();
    let csv_outcomes: Vec<String> = read_report(&work.path("out/report.csv"))
        .into_iter()
        .map(|l| l["outcome"].clone())
        .collect();
    assert_eq!(parquet_outcomes, csv_outcomes);
}

/// A CSV file as a frame of text columns.
fn csv_as_frame(path: &std::path::Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;

    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        for (column, cell) in cells.iter_mut().zip(record.unwrap().iter()) {
            column.push(cell.to_string());
        }
    }
    let height = cells[0].len();
    let columns = headers
        .iter()
        .zip(cells)
        .map(|(h, c)| Column::new(h.as_str().into(), c))
        .collect();
    DataFrame::new(height, columns).unwrap()
}

#[test]
fn a_killed_run_resumes_without_submitting_any_ticket_twice() {
    let work = Workspace::new(60);
    let sandbox = work.sandbox(|c| {
        c.review_share = 0.3;
        c.faults = Faults {
            latency_mean_ms: 40,
            latency_jitter_ms: 30,
            ..Faults::default()
        };
    });
    let spec = work.spec("spec.yaml", "data/accounts.csv", "20/s", "");

    for kill_after in [Duration::from_millis(900), Duration::from_millis(700)] {
        run_and_kill(&spec, &sandbox.url(), kill_after);
    }
    let output = run(&spec, &sandbox.url(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let stats = sandbox.stats();
    check_report(&work, &read_report(&work.path("out/report.csv")), &stats);
    assert_no_ticket_submitted_twice(&stats);
}

#[test]
fn calls_never_exceed_the_quota_in_any_second() {
    let work = Workspace::new(50);
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.csv", "15/s", "");

    let output = run(&spec, &sandbox.url(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let stats = sandbox.stats();
    for action in [Action::GetVerifyToken, Action::SubmitMaterials] {
        let peak = stats.action(action).peak_arrivals_per_second;
        assert!(peak <= 15, "{action}: {peak} calls in one second");
        assert!(
            peak >= 10,
            "{action}: only {peak} calls in one second; the quota is not used"
        );
    }
}

#[test]
fn a_broken_spec_is_refused_with_its_line_and_exit_code_2() {
    let work = Workspace::new(2);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "10/x", "");

    let output = run(&spec, "sandbox", &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("spec.yaml:6:"), "{message}");
    assert!(message.contains("service.rate.GetVerifyToken"), "{message}");
    assert!(message.contains("10/x"), "{message}");
}

#[test]
fn a_template_naming_an_unknown_column_is_refused_before_any_call() {
    let work = Workspace::new(2);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "10/s", "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("e2e-{account_id}", "e2e-{acount_id}");
    std::fs::write(&spec, text).unwrap();
    let sandbox = work.sandbox(|_| {});

    let output = run(&spec, &sandbox.url(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("column \"acount_id\""),
        "{}",
        stderr(&output)
    );
    assert_eq!(sandbox.stats().action(Action::GetVerifyToken).arrived, 0);
}

#[test]
fn failed_rows_are_verified_again_under_new_tickets_only_when_asked() {
    let work = Workspace::new(20);
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.csv", "40/s", "");
    run(&spec, &sandbox.url(), &[]);
    let first = sandbox.stats().action(Action::SubmitMaterials).arrived;

    let again = run(&spec, &sandbox.url(), &[]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let stats = sandbox.stats();
    assert_eq!(
        stats.action(Action::SubmitMaterials).arrived,
        first,
        "a second plain run resubmitted"
    );

    let retried = run(&spec, &sandbox.url(), &["--retry-outcomes", "failed"]);
    assert_eq!(retried.status.code(), Some(1), "{}", stderr(&retried));
    let stats = sandbox.stats();
    let report = read_report(&work.path("out/report.csv"));
    for line in &report {
        let retry_ticket = format!("e2e-{}-r2", line["key"]);
        if line["outcome"] == "failed" {
            assert_eq!(line["ticket_id"], retry_ticket);
            // A name that does not match is refused before anything is recorded.
            let recorded = u32::from(line["error_code"] != "Error.RealNameCheckFail");
            assert_eq!(stats.submissions(BIZ, &retry_ticket), recorded, "{line:?}");
        } else {
            assert_eq!(stats.submissions(BIZ, &retry_ticket), 0, "{line:?}");
        }
    }
    assert_no_ticket_submitted_twice(&stats);
}

#[test]
fn chaos_with_faults_and_kills_still_reports_every_row_exactly_once() {
    let work = Workspace::new(60);
    let sandbox = work.sandbox(|c| {
        c.review_share = 0.3;
        c.token_lifetime = Duration::from_secs(2);
        c.quotas.insert(Action::SubmitMaterials, 12);
        c.faults = Faults {
            latency_mean_ms: 30,
            latency_jitter_ms: 30,
            error_share: 0.05,
            slow_share: 0.03,
            slow_ms: 1500,
            drop_after_commit_share: 0.1,
            ..Faults::default()
        };
    });
    let extra = "";
    let spec = work.spec("spec.yaml", "data/accounts.csv", "20/s", extra);
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "  concurrency: auto",
        "  concurrency: auto\n  timeouts: { submit: 1s, read: 1s }",
    );
    std::fs::write(&spec, text).unwrap();

    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..4 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(300 + (seed >> 33) % 1200);
        run_and_kill(&spec, &sandbox.url(), kill_after);
    }
    let output = run(&spec, &sandbox.url(), &[]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );

    let stats = sandbox.stats();
    let report = read_report(&work.path("out/report.csv"));
    assert_eq!(report.len(), 60);
    for line in &report {
        assert_ne!(line["error_message"], "not reached by the run", "{line:?}");
        if let Some(verdict) = stats.verdict(BIZ, &line["ticket_id"]) {
            assert_eq!(
                line["status_code"],
                verdict.status_code.to_string(),
                "{line:?}"
            );
        }
    }
    assert_no_ticket_submitted_twice(&stats);
    for action in [Action::GetVerifyToken, Action::SubmitMaterials] {
        let peak = stats.action(action).peak_arrivals_per_second;
        assert!(peak <= 20, "{action}: {peak} calls in one second");
    }
}

#[test]
fn a_second_run_on_the_same_ledger_is_refused_and_sigterm_stops_gracefully() {
    let work = Workspace::new(40);
    let sandbox = work.sandbox(|c| {
        c.faults = Faults {
            latency_mean_ms: 100,
            ..Faults::default()
        };
    });
    let spec = work.spec("spec.yaml", "data/accounts.csv", "5/s", "");
    let first = crate::support::binary()
        .arg("run")
        .arg(&spec)
        .args(["--endpoint", &sandbox.url()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first submissions rather than a fixed time: a busy machine can take
    // long to start the process.
    let started = std::time::Instant::now();
    while sandbox.stats().action(Action::SubmitMaterials).arrived < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never submitted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let second = run(&spec, &sandbox.url(), &[]);
    assert_eq!(second.status.code(), Some(6), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!("process {}", first.id())),
        "{}",
        stderr(&second)
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = first.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let report = read_report(&work.path("out/report.csv"));
    assert_eq!(report.len(), 40, "the report holds every input row");
    assert!(report.iter().any(|l| l["outcome"] == "passed"));
    let unfinished = report.iter().filter(|l| l["outcome"] == "pending").count();
    assert!(unfinished > 0, "the run was stopped before its end");

    let resumed = run(&spec, &sandbox.url(), &[]);
    assert_eq!(resumed.status.code(), Some(1), "{}", stderr(&resumed));
    check_report(
        &work,
        &read_report(&work.path("out/report.csv")),
        &sandbox.stats(),
    );
    assert_no_ticket_submitted_twice(&sandbox.stats());
}

#[test]
fn every_source_form_of_an_image_reaches_the_service() {
    use cloudauth_batch::cloudauth::{Client, Credentials, Timeouts};
    use cloudauth_batch::sandbox::{TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET};

    let work = Workspace::new(60);
    let sandbox = work.sandbox(|_| {});
    let credentials = Credentials::new(TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET);
    let client = Client::new(
        &sandbox.url(),
        "cn-hangzhou",
        credentials,
        Timeouts::default(),
    )
    .unwrap();
    let sts = client
        .get_verify_token(BIZ, "uploads", None)
        .unwrap()
        .data
        .sts_token
        .unwrap();

    // Two passing rows with an ID card file: one sent as an oss:// object, one as a URL.
    let with_card: Vec<_> = work
        .manifest
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Pass)
        .filter(|a| {
            a.id_front
                .as_deref()
                .is_some_and(|c| c.starts_with("data/"))
        })
        .take(2)
        .collect();
    let mut cells = HashMap::new();
    for (i, account) in with_card.iter().enumerate() {
        let card = std::fs::read(work.path(account.id_front.as_deref().unwrap())).unwrap();
        let name = format!("{}.jpg", account.account_id);
        let address = client.put_object(&sts, &name, card, "image/jpeg").unwrap();
        let (_, key) = address
            .strip_prefix("oss://")
            .unwrap()
            .split_once(':')
            .unwrap();
        let cell = if i == 0 {
            address.clone()
        } else {
            format!(
                "{}/_sandbox/objects/{}",
                sandbox.url(),
                key.replace('/', "%2F")
            )
        };
        cells.insert(account.account_id.clone(), cell);
    }
    let accounts = std::fs::read_to_string(work.path("data/accounts.csv")).unwrap();
    let rewritten: Vec<String> = accounts
        .lines()
        .map(
            |line| match cells.iter().find(|(id, _)| line.starts_with(id.as_str())) {
                Some((_, cell)) => {
                    let (rest, _) = line.rsplit_once(',').unwrap();
                    format!("{rest},{cell}")
                }
                None => line.to_string(),
            },
        )
        .collect();
    std::fs::write(work.path("data/accounts.csv"), rewritten.join("\n") + "\n").unwrap();
    let spec = work.spec("spec.yaml", "data/accounts.csv", "40/s", "");

    let output = run(&spec, &sandbox.url(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = read_report(&work.path("out/report.csv"));
    check_report(&work, &report, &sandbox.stats());
    let forms = |prefix: &str| {
        work.manifest
            .accounts
            .iter()
            .filter(|a| a.id_front.as_deref().is_some_and(|c| c.starts_with(prefix)))
            .count()
    };
    assert!(
        forms("data:image/") > 0 && forms("base64://") > 0,
        "the demo data lacks inline forms"
    );
    for line in report.iter().filter(|l| cells.contains_key(&l["key"])) {
        assert_eq!(line["outcome"], "passed", "{line:?}");
        assert!(
            !line["similarity_score"].is_empty(),
            "the card did not arrive: {line:?}"
        );
    }
}

#[test]
fn refused_credentials_stop_the_run_at_once_with_code_3() {
    let work = Workspace::new(30);
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.csv", "20/s", "");

    let output = crate::support::binary()
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
        .arg("run")
        .arg(&spec)
        .args(["--endpoint", &sandbox.url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("SignatureDoesNotMatch"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("not-the-secret"),
        "the secret was printed"
    );
    let calls = sandbox.stats().action(Action::GetVerifyToken).arrived;
    assert!(calls < 30, "{calls} calls: the run went on row after row");
}

#[test]
fn max_duration_ends_the_run_gracefully_with_code_5() {
    let work = Workspace::new(40);
    let sandbox = work.sandbox(|_| {});
    let spec = work.spec("spec.yaml", "data/accounts.csv", "5/s", "");

    let output = run(&spec, &sandbox.url(), &["--max-duration", "1s"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let report = read_report(&work.path("out/report.csv"));
    assert_eq!(report.len(), 40);
    assert!(report.iter().any(|l| l["outcome"] == "pending"));
    assert_no_ticket_submitted_twice(&sandbox.stats());
}
