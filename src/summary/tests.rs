//! Tests of the summary as a whole: statistics from report lines, the JSON, the page.

use std::time::Duration;

use super::*;

fn line(row: u64, outcome: &'static str) -> Line {
    Line {
        row,
        key: format!("K{row}"),
        name: None,
        id_number: None,
        mobile: None,
        ticket_id: format!("ticket-{row}"),
        outcome,
        status_code: None,
        similarity_score: None,
        authority_comparison_score: None,
        audit_conclusions: None,
        error_code: None,
        error_message: None,
        request_id: None,
        attempts: 1,
        submitted_at: None,
        completed_at: None,
        latency_ms: None,
        images: None,
    }
}

fn verdict(row: u64, status: i32, authority: f64, latency_ms: i64, at: &str) -> Line {
    Line {
        status_code: Some(status),
        authority_comparison_score: Some(authority),
        similarity_score: Some(authority - 5.0),
        latency_ms: Some(latency_ms),
        completed_at: Some(at.to_string()),
        ..line(row, if status == 1 { "passed" } else { "failed" })
    }
}

fn errored(row: u64, code: &str) -> Line {
    Line {
        error_code: Some(code.to_string()),
        error_message: Some("Zhang San's call failed".to_string()),
        completed_at: Some("2024-05-01T09:00:05.000Z".to_string()),
        ..line(row, "error")
    }
}

/// Ten lines whose statistics are worked out by hand in the tests.
fn ten_lines() -> Vec<Line> {
    vec![
        verdict(1, 1, 98.13, 120, "2024-05-01T09:00:00.100Z"),
        verdict(2, 1, 95.0, 150, "2024-05-01T09:00:00.800Z"),
        verdict(3, 1, 90.5, 90, "2024-05-01T09:00:01.000Z"),
        verdict(4, 2, 12.0, 2_000, "2024-05-01T09:00:02.000Z"),
        verdict(5, 1, 80.0, 100, "2024-05-01T09:00:03.000Z"),
        errored(6, "Throttling"),
        errored(7, "Throttling"),
        errored(8, "Transport.NoAnswer"),
        line(9, "pending"),
        Line {
            status_code: Some(-1),
            ..line(10, "skipped")
        },
    ]
}

#[test]
fn counts_outcomes_status_codes_and_error_codes() {
    let summary = Summary::from_lines(&ten_lines(), None);

    assert_eq!(summary.rows, 10);
    let o = summary.outcomes;
    assert_eq!(
        (o.passed, o.failed, o.pending, o.error, o.skipped),
        (4, 1, 1, 3, 1)
    );
    let statuses: Vec<(Option<i32>, &str, u64)> = summary
        .status_codes
        .iter()
        .map(|s| (s.code, s.meaning.as_str(), s.rows))
        .collect();
    assert_eq!(
        statuses,
        [
            (Some(-1), "not submitted", 1),
            (Some(1), "passed", 4),
            (Some(2), "failed", 1),
            (None, "no status", 4),
        ]
    );
    let errors: Vec<(&str, u64)> = summary
        .error_codes
        .iter()
        .map(|e| (e.code.as_str(), e.rows))
        .collect();
    assert_eq!(errors, [("Throttling", 2), ("Transport.NoAnswer", 1)]);
}

#[test]
fn scores_latencies_and_throughput_match_hand_computed_values() {
    let summary = Summary::from_lines(&ten_lines(), None);

    let authority = &summary.authority_comparison_score;
    assert_eq!(authority.rows, 5);
    // Sorted: 12, 80, 90.5, 95, 98.13; nearest rank 3 and 5.
    assert_eq!((authority.p50, authority.p90), (Some(90.5), Some(98.13)));
    let thresholds: Vec<u64> = authority.thresholds.iter().map(|t| t.rows).collect();
    assert_eq!(thresholds, [2, 3, 4, 4]);
    assert_eq!(authority.buckets[1].rows, 1);
    assert_eq!(authority.buckets[8].rows, 1);
    assert_eq!(authority.buckets[9].rows, 3);
    assert_eq!(summary.similarity_score.min, Some(7.0));

    // Sorted latencies: 90, 100, 120, 150, 2000 ms. Rank 3 is 120 ms, in (112, 126] ms.
    let latency = &summary.row_latency;
    assert_eq!(latency.count, 5);
    assert_eq!(latency.p50_ms, Some(126.0));
    assert_eq!(
        (latency.p90_ms, latency.max_ms),
        (Some(2_000.0), Some(2_000.0))
    );

    // Eight completions from 09:00:00 to 09:00:05: six seconds, one point per second.
    let throughput = &summary.throughput;
    assert_eq!((throughput.completed, throughput.span_seconds), (8, 6));
    let series: Vec<u64> = throughput.series.iter().map(|p| p.rows).collect();
    assert_eq!(series, [2, 1, 1, 1, 0, 3]);
    assert_eq!(throughput.rows_per_second, Some(1.333));
}

#[test]
fn call_metrics_give_calls_per_action() {
    let metrics = Metrics::new();
    for ms in [100, 200, 300, 400] {
        metrics.call(Action::SubmitMaterials, Duration::from_millis(ms));
    }
    metrics.error(Action::SubmitMaterials);
    metrics.throttled(Action::SubmitMaterials);
    metrics.add_throttled(Duration::from_millis(1_500));
    let mut run = metrics.snapshot();
    run.wall_ms = 4_000;

    let summary = Summary::from_lines(&ten_lines(), Some(&run));
    let calls = summary.calls.expect("metrics were given");
    assert_eq!((calls.calls, calls.throttled_answers), (4, 1));
    assert_eq!(calls.throttled_seconds, 1.5);
    let submit = &calls.actions[0];
    assert_eq!(submit.action, Action::SubmitMaterials);
    // Rank 2 of 4 is 200 ms, itself a bucket bound; rank 4 is 400 ms, in (398, 447] ms.
    assert_eq!(submit.latency.p50_ms, Some(200.0));
    assert_eq!(
        submit.latency.p99_ms,
        Some(400.0),
        "clamped to the largest call"
    );
    assert_eq!(
        summary.throughput.rows_per_second,
        Some(2.0),
        "8 rows over 4 s of running"
    );
    assert_eq!(summary.throughput.rate_basis, RateBasis::Wall);
}

#[test]
fn error_codes_past_the_cap_are_counted_together() {
    let mut builder = SummaryBuilder::new();
    for i in 0..MAX_ERROR_CODES + 3 {
        builder.add(&errored(i as u64, &format!("Code.{i}")));
    }
    builder.add(&errored(0, "Code.0"));

    let summary = builder.finish(None);
    assert_eq!(summary.error_codes.len(), MAX_ERROR_CODES);
    assert_eq!(summary.other_error_codes, 3);
    assert_eq!(
        (
            summary.error_codes[0].code.as_str(),
            summary.error_codes[0].rows
        ),
        ("Code.0", 2)
    );
}

#[test]
fn the_json_round_trips_and_holds_no_personal_data() {
    let mut run = Metrics::new().snapshot();
    run.wall_ms = 9_876;
    let summary = Summary::from_lines(&ten_lines(), Some(&run));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");

    summary.write_json(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, summary);
    for private in ["K1", "ticket-1", "Zhang San"] {
        assert!(!text.contains(private), "{private} leaked into the JSON");
    }
    assert!(!dir.path().join("summary.json.partial").exists());
}

#[test]
fn an_empty_run_still_summarises() {
    let summary = Summary::from_lines(&[], None);

    assert_eq!(summary.rows, 0);
    assert_eq!(summary.throughput.rate_basis, RateBasis::None);
    assert!(summary.throughput.series.is_empty());
    let html = summary.to_html();
    assert!(html.contains("No row has this score."));
    assert!(html.contains("No row completed."));
    assert_balanced(&html, "svg");
}

/// Every `<tag` opened in `html` is closed, in order.
fn assert_balanced(html: &str, tag: &str) {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut depth = 0i32;
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if rest.starts_with(&close) {
            depth -= 1;
            assert!(depth >= 0, "</{tag}> without <{tag}>");
        } else if rest.starts_with(&open) {
            depth += 1;
        }
        rest = &rest[1..];
    }
    assert_eq!(depth, 0, "unclosed <{tag}>");
}

#[test]
fn the_page_is_well_formed_and_escapes_server_text() {
    let mut lines = ten_lines();
    lines.push(errored(11, "<script>alert('x')</script>"));
    let summary = Summary::from_lines(&lines, Some(&Metrics::new().snapshot()));

    let html = summary.to_html();
    assert!(
        !html.contains("<script"),
        "server text reached the page unescaped"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    for tag in ["svg", "section", "table", "main", "html", "text"] {
        assert_balanced(&html, tag);
    }
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "outcomes, two scores, errors, throughput"
    );
    for label in [
        "95 · FAR 1/100,000",
        "90 · FAR 1/10,000",
        "80 · FAR 1/1,000",
        "60 · FAR 1/100",
    ] {
        assert!(html.contains(label), "missing threshold label {label}");
    }
    for private in ["K1", "ticket-1", "Zhang San"] {
        assert!(!html.contains(private), "{private} leaked into the page");
    }
    let namespaces = html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(
        html.matches("http://").count(),
        namespaces,
        "only SVG namespaces"
    );
    assert!(!html.contains("https://"), "the page links nothing");
}

#[test]
fn the_files_go_next_to_the_report() {
    let (json, html) = paths_beside(Path::new("/runs/may/report.csv"));
    assert_eq!(json, Path::new("/runs/may/summary.json"));
    assert_eq!(html, Path::new("/runs/may/summary.html"));

    let (json, _) = paths_beside(Path::new("report.parquet"));
    assert_eq!(json, Path::new("summary.json"));
}

/// A deterministic stream of numbers in 0..1, for synthetic rows.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 240 rows with the mix of a real run: most pass with high scores, some fail, some
/// throttled or unanswered, a few still in review or skipped, over about twenty minutes.
fn sample_lines() -> Vec<Line> {
    let mut random = Lcg(7);
    let start = time::macros::datetime!(2024-05-01 09:00:00 UTC);
    (1..=240)
        .map(|row| {
            let draw = random.next();
            let seconds = row as f64 * 5.0 + random.next() * 4.0;
            let at = start + time::Duration::seconds_f64(seconds);
            let at = at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let score = 100.0 - (random.next() * random.next() * 70.0);
            let latency = (300.0 + random.next() * random.next() * 9_000.0) as i64;
            match draw {
                d if d < 0.70 => verdict(row, 1, (score * 100.0).round() / 100.0, latency, &at),
                d if d < 0.82 => verdict(row, 2, (score * 60.0).round() / 100.0, latency, &at),
                d if d < 0.87 => Line {
                    completed_at: Some(at),
                    ..errored(row, "Throttling")
                },
                d if d < 0.90 => Line {
                    completed_at: Some(at),
                    ..errored(row, "Transport.NoAnswer")
                },
                d if d < 0.92 => Line {
                    completed_at: Some(at),
                    outcome: "failed",
                    ..errored(row, "Error.RealNameCheckFail")
                },
                d if d < 0.96 => Line {
                    status_code: Some(0),
                    ..line(row, "pending")
                },
                _ => Line {
                    status_code: Some(-1),
                    ..line(row, "skipped")
                },
            }
        })
        .collect()
}

fn sample_metrics() -> RunMetrics {
    let metrics = Metrics::new();
    let mut random = Lcg(11);
    for action in [
        Action::GetVerifyToken,
        Action::SubmitMaterials,
        Action::GetStatus,
    ] {
        for _ in 0..240 {
            let ms = 20.0 + random.next() * random.next() * 1_500.0;
            metrics.call(action, Duration::from_secs_f64(ms / 1e3));
            metrics.add_limiter_wait(Duration::from_secs_f64(random.next() * 0.2));
        }
    }
    for _ in 0..12 {
        metrics.error(Action::SubmitMaterials);
        metrics.throttled(Action::SubmitMaterials);
        metrics.retry(Action::SubmitMaterials);
        metrics.add_throttled(Duration::from_millis(800));
    }
    let mut run = metrics.snapshot();
    run.started_at = Some("2024-05-01T08:59:58.000Z".into());
    run.finished_at = Some("2024-05-01T09:20:06.000Z".into());
    run.wall_ms = 1_208_000;
    run
}

/// Writes the sample page and its JSON to `$SUMMARY_SAMPLE_DIR`, or to a temporary folder,
/// for a look in a browser: `SUMMARY_SAMPLE_DIR=/tmp/sample cargo test --lib sample_page`.
#[test]
fn sample_page() {
    let summary = Summary::from_lines(&sample_lines(), Some(&sample_metrics()));
    let temporary = tempfile::tempdir().unwrap();
    let folder = std::env::var_os("SUMMARY_SAMPLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let (json, html) = paths_beside(&folder.join("report.csv"));

    summary.write_json(&json).unwrap();
    summary.write_html(&html).unwrap();
    assert_eq!(summary.rows, 240);
    assert!(summary.throughput.series.len() <= MAX_POINTS as usize);
    assert!(std::fs::metadata(&html).unwrap().len() > 10_000);
}
