//! Pre-flight checks end to end: the corpus of bad specs and bad data under
//! `tests/fixtures/check`, the demo's plan, invalid rows in `run`, and oversize photos sent
//! both ways (re-encoded, uploaded to OSS) through the sandbox.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cloudauth_batch::sandbox::synthetic::{AccountKind, oversize_photo};

use crate::support::{Workspace, binary, read_report, run, stderr};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

/// What a corpus spec says about itself in its leading comments.
#[derive(Default)]
struct Expectation {
    exit: Option<i32>,
    expect: Vec<String>,
    reject: Vec<String>,
}

fn expectation(spec: &Path) -> Expectation {
    let text = std::fs::read_to_string(spec).unwrap();
    let mut expectation = Expectation::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let (name, value) = line[1..].split_once(':').unwrap();
        let value = value.trim().to_string();
        match name.trim() {
            "exit" => expectation.exit = Some(value.parse().unwrap()),
            "expect" => expectation.expect.push(value),
            "reject" => expectation.reject.push(value),
            other => panic!("{}: unknown expectation {other}", spec.display()),
        }
    }
    expectation
}

#[test]
fn every_spec_of_the_corpus_gives_its_message_and_exit_code() {
    let out = tempfile::tempdir().unwrap();
    let mut specs: Vec<PathBuf> = std::fs::read_dir(corpus().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 10, "the corpus lost its specs");
    for spec in specs {
        let expected = expectation(&spec);
        let output = binary()
            .arg("check")
            .arg(&spec)
            .arg("--rejects")
            .arg(out.path().join("rejects.csv"))
            .env_remove("CLOUDAUTH_CORPUS_UNSET")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        let name = spec.file_name().unwrap().to_string_lossy();
        assert_eq!(output.status.code(), expected.exit, "{name}:\n{text}");
        for wanted in &expected.expect {
            assert!(
                text.contains(wanted.as_str()),
                "{name}: no {wanted:?} in:\n{text}"
            );
        }
        for unwanted in &expected.reject {
            assert!(
                !text.contains(unwanted.as_str()),
                "{name}: {unwanted:?} shown in:\n{text}"
            );
        }
    }
}

#[test]
fn bad_data_rows_are_rejected_with_their_reasons_and_masked() {
    let out = tempfile::tempdir().unwrap();
    let rejects = out.path().join("rejects.csv");
    let output = binary()
        .arg("check")
        .arg(corpus().join("specs/bad-data.yaml"))
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let found: HashMap<String, String> = read_report(&rejects)
        .into_iter()
        .map(|r| (r["row"].clone(), r["reasons"].clone()))
        .collect();
    let expected: HashMap<String, String> =
        read_report(&corpus().join("data/expected-rejects.csv"))
            .into_iter()
            .map(|r| (r["row"].clone(), r["reasons"].clone()))
            .collect();
    assert_eq!(found, expected);

    let text =
        std::fs::read_to_string(&rejects).unwrap() + &String::from_utf8_lossy(&output.stdout);
    let accounts = std::fs::read_to_string(corpus().join("data/accounts.csv")).unwrap();
    for line in accounts.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 5 {
            continue;
        }
        // Names, ID numbers and mobiles of rejected rows appear only masked.
        for value in cells
            .iter()
            .skip(1)
            .take(3)
            .filter(|v| v.chars().count() >= 3)
        {
            assert!(!text.contains(value), "{value} shown unmasked in:\n{text}");
        }
    }
    assert!(text.contains("6305**********0099"), "{text}");
}

#[test]
fn the_demo_plan_counts_rows_calls_time_and_cost() {
    let work = Workspace::new(30);
    let spec = work.spec("spec.yaml", "data/accounts.csv", "20/s", "");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "  concurrency: auto",
        "  concurrency: auto\n  unit_price: 0.40 CNY",
    );
    std::fs::write(&spec, text).unwrap();
    let output = binary().arg("check").arg(&spec).output().unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);

    let missing = work.manifest.count(AccountKind::MissingPhoto);
    let valid = 30 - missing;
    assert_eq!(
        output.status.code(),
        Some(if missing > 0 { 1 } else { 0 }),
        "{plan}"
    );
    assert!(plan.contains("input      "), "{plan}");
    assert!(plan.contains(": 30 rows"), "{plan}");
    assert!(plan.contains(&format!("valid      {valid} rows")), "{plan}");
    assert!(
        plan.contains(&format!("GetVerifyToken {valid}, SubmitMaterials {valid}")),
        "{plan}"
    );
    let seconds = valid as f64 / 20.0;
    assert!(plan.contains(&format!("at least {seconds:.1} s")), "{plan}");
    let cost = valid as f64 * 0.40;
    assert!(
        plan.contains(&format!("cost       {cost:.2} CNY")),
        "{plan}"
    );

    // After a run, the plan knows which rows already have a verdict.
    let sandbox = work.sandbox(|_| {});
    run(&spec, &sandbox.url(), &["--no-progress"]);
    let output = binary().arg("check").arg(&spec).output().unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(
        plan.contains("GetVerifyToken 0, SubmitMaterials 0"),
        "{plan}"
    );
}

#[test]
fn a_run_skips_invalid_rows_and_abort_sends_nothing() {
    let work = Workspace::new(12);
    let accounts = work.path("data/accounts.csv");
    let text = std::fs::read_to_string(&accounts).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Spoil row 3's ID number: its check digit no longer matches.
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    let last = cells[2].pop().unwrap();
    cells[2].push(if last == '1' { '2' } else { '1' });
    lines[3] = cells.join(",");
    std::fs::write(&accounts, lines.join("\n") + "\n").unwrap();

    let spec = work.spec(
        "spec.yaml",
        "data/accounts.csv",
        "50/s",
        "on_invalid: abort\n",
    );
    let sandbox = work.sandbox(|_| {});
    let output = run(&spec, &sandbox.url(), &["--no-progress"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("on_invalid is abort"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        sandbox
            .stats()
            .action(cloudauth_batch::cloudauth::Action::GetVerifyToken)
            .arrived,
        0
    );

    let spec = work.spec(
        "spec.yaml",
        "data/accounts.csv",
        "50/s",
        "on_invalid: skip\n",
    );
    run(&spec, &sandbox.url(), &["--no-progress"]);
    let report = read_report(&work.path("out/report.csv"));
    assert_eq!(report[2]["outcome"], "skipped");
    assert_eq!(report[2]["error_code"], "id_number.check_digit");
    assert!(
        !report[2]["error_message"].contains(&cells[2]),
        "{:?}",
        report[2]
    );
    let sent = sandbox
        .stats()
        .action(cloudauth_batch::cloudauth::Action::SubmitMaterials)
        .arrived;
    let missing = work.manifest.count(AccountKind::MissingPhoto) as u32;
    assert!(sent <= 11 - missing.min(11), "{sent} submissions");
}

/// Replaces the face photos of the first `count` passing accounts with photos over 2 MB,
/// and returns their account ids.
fn oversize_faces(work: &Workspace, count: usize, min_bytes: usize) -> Vec<String> {
    let passing: Vec<String> = work
        .manifest
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Pass)
        .take(count)
        .map(|a| a.account_id.clone())
        .collect();
    for (seed, account) in passing.iter().enumerate() {
        let path = work.path(&format!("data/images/faces/{account}.jpg"));
        let photo = oversize_photo(&std::fs::read(&path).unwrap(), min_bytes, seed as u64);
        assert!(photo.len() > 2_000_000);
        std::fs::write(&path, photo).unwrap();
    }
    passing
}

fn outcomes_of(work: &Workspace, accounts: &[String]) -> Vec<(String, String)> {
    read_report(&work.path("out/report.csv"))
        .into_iter()
        .filter(|r| accounts.contains(&r["key"]))
        .map(|r| (r["outcome"].clone(), r["images"].clone()))
        .collect()
}

#[test]
fn oversize_photos_are_re_encoded_or_uploaded_and_still_verified() {
    let work = Workspace::new(8);
    let big = oversize_faces(&work, 2, 2_500_000);
    let sandbox = work.sandbox(|_| {});

    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", "");
    let output = run(&spec, &sandbox.url(), &["--no-progress"]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    for (outcome, images) in outcomes_of(&work, &big) {
        assert_eq!(outcome, "passed", "{images}");
        assert!(
            images.contains("FacePic") && images.contains("re-encoded as JPEG"),
            "{images}"
        );
    }

    std::fs::remove_dir_all(work.path("out")).unwrap();
    let spec = work.spec(
        "spec.yaml",
        "data/accounts.csv",
        "50/s",
        "images: { fit: upload }\n",
    );
    // New tickets: the sandbox remembers the first run's.
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("\"e2e-{account_id}\"", "\"e2e-upload-{account_id}\"");
    std::fs::write(&spec, text).unwrap();
    let output = run(&spec, &sandbox.url(), &["--no-progress"]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    for (outcome, images) in outcomes_of(&work, &big) {
        assert_eq!(outcome, "passed", "{images}");
        assert!(images.contains("uploaded to OSS unchanged"), "{images}");
    }

    let output = binary().arg("check").arg(&spec).output().unwrap();
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("images     0 to re-encode"), "{plan}");
}

#[test]
fn photos_that_would_take_the_body_over_8_mb_go_through_oss() {
    let work = Workspace::new(4);
    let account = work
        .manifest
        .accounts
        .iter()
        .find(|a| a.kind == AccountKind::Pass)
        .unwrap()
        .account_id
        .clone();
    // The face photo padded after its end-of-image marker to 1.9 MB, which decoders
    // ignore: under the per-image limit, so it is not re-encoded, but four of them as the
    // face and three more pictures of the row make a body of about 11 MB.
    let face = work.path(&format!("data/images/faces/{account}.jpg"));
    let mut photo = std::fs::read(&face).unwrap();
    photo.extend((0..1_900_000 - photo.len()).map(|i| (i * 7919 % 251) as u8));
    for folder in ["faces", "front", "back", "chip"] {
        std::fs::create_dir_all(work.path(&format!("data/images/{folder}"))).unwrap();
        std::fs::write(
            work.path(&format!("data/images/{folder}/{account}.jpg")),
            &photo,
        )
        .unwrap();
    }
    let spec = work.spec("spec.yaml", "data/accounts.csv", "50/s", "");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "  IdCardFrontPic: { column: id_front, required: false }",
        "  IdCardFrontPic: { file: \"data/images/front/{account_id}.jpg\", required: false }\n  \
         IdCardBackPic: { file: \"data/images/back/{account_id}.jpg\", required: false }\n  \
         IDPic: { file: \"data/images/chip/{account_id}.jpg\", required: false }",
    );
    std::fs::write(&spec, text).unwrap();
    let sandbox = work.sandbox(|_| {});
    let output = run(&spec, &sandbox.url(), &["--no-progress"]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let outcomes = outcomes_of(&work, &[account]);
    let (outcome, images) = &outcomes[0];
    assert_eq!(outcome, "passed", "{images}");
    assert_eq!(
        images
            .matches("uploaded to OSS: the request body would exceed")
            .count(),
        2,
        "{images}"
    );
}
