//! The summary as one self-contained HTML page: inline CSS and SVG, no scripts, no fonts
//! or images from elsewhere, so it opens the same offline, in a mail, or in an archive.
//!
//! Every piece of text from the summary is escaped here or in [`svg`]; the page shows
//! counts, scores and codes only, as the summary holds nothing else.

use std::fmt::Write as _;

use super::svg::{self, Bar, Bin, Column, Marker, escape};
use super::{ErrorCount, LatencyStats, ScoreStats, Summary, Throughput};

/// Error codes drawn one by one; the rest share one "other" bar.
const TOP_ERRORS: usize = 10;

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial,
  sans-serif; color: #1d2430; background: #f6f7f9; margin: 0; }
main { max-width: 960px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 0 0 8px; }
p.sub, p.note { color: #5b6472; margin: 4px 0 12px; font-size: 14px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 16px 20px;
  margin: 16px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 10px 14px; }
.card .n { font-size: 22px; font-weight: 600; }
.card .k { font-size: 13px; color: #5b6472; }
table { border-collapse: collapse; min-width: 60%; font-size: 14px; margin: 8px 0; }
th, td { text-align: right; padding: 4px 14px; border-bottom: 1px solid #eceff3; }
th:first-child, td:first-child { text-align: left; }
th { color: #5b6472; font-weight: 600; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 12px; fill: #1d2430; }
svg .tick { fill: #5b6472; font-size: 11px; }
svg .value { font-size: 12px; fill: #1d2430; }
svg .grid { stroke: #eceff3; }
svg .axis { stroke: #8a93a1; }
svg .bar { fill: #4e79a7; }
svg .passed { fill: #2e9d5b; } svg .failed { fill: #d64545; } svg .pending { fill: #e0a526; }
svg .error { fill: #8e44ad; } svg .skipped { fill: #9aa3ae; } svg .other { fill: #b8bfc9; }
svg .marker { stroke: #c0392b; stroke-dasharray: 4 3; stroke-width: 1.5; }
svg .marker-label { fill: #c0392b; font-size: 11px; font-weight: 600; }
";

/// The whole page.
pub fn page(summary: &Summary) -> String {
    let mut html = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n");
    html.push_str("<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str("<title>Cloudauth batch run summary</title>\n");
    let _ = write!(html, "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n");
    html.push_str(&title(summary));
    for section in [
        headline(summary),
        outcomes(summary),
        authority_score(&summary.authority_comparison_score),
        similarity_score(&summary.similarity_score),
        error_codes(summary),
        throughput(&summary.throughput),
        calls(summary),
    ] {
        html.push_str(&section);
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn title(summary: &Summary) -> String {
    let t = &summary.throughput;
    let span = match (&summary.calls, &t.first_completed_at, &t.last_completed_at) {
        (Some(c), _, _) if c.started_at.is_some() && c.finished_at.is_some() => format!(
            "Run from {} to {} UTC",
            readable_time(c.started_at.as_deref()),
            readable_time(c.finished_at.as_deref())
        ),
        (_, Some(first), Some(last)) => format!(
            "Rows completed from {} to {} UTC",
            readable_time(Some(first)),
            readable_time(Some(last))
        ),
        _ => "No row completed".to_string(),
    };
    format!(
        "<h1>Cloudauth batch run summary</h1>\n<p class=\"sub\">{}. Counts, scores and codes \
         only: no keys, names or messages.</p>\n",
        escape(&span)
    )
}

/// `2024-05-01T08:59:58.000Z` as `2024-05-01 08:59:58`.
fn readable_time(at: Option<&str>) -> String {
    let at = at.unwrap_or("");
    at.get(..19).unwrap_or(at).replacen('T', " ", 1)
}

fn card(number: &str, key: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"n\">{}</div><div class=\"k\">{}</div></div>\n",
        escape(number),
        escape(key)
    )
}

fn headline(summary: &Summary) -> String {
    let rows = summary.rows;
    let mut cards = card(&count(rows), "rows");
    for (name, n) in summary.outcomes.named() {
        cards.push_str(&card(&count(n), &format!("{name} ({})", percent(n, rows))));
    }
    let rate = per_second(summary.throughput.rows_per_second);
    cards.push_str(&card(&rate, "rows / second"));
    let latency = &summary.row_latency;
    cards.push_str(&card(&duration(latency.p50_ms), "row latency p50"));
    cards.push_str(&card(&duration(latency.p90_ms), "row latency p90"));
    if let Some(calls) = &summary.calls {
        cards.push_str(&card(&count(calls.calls), "calls"));
        cards.push_str(&card(&count(calls.throttled_answers), "throttled answers"));
        let waited = calls.throttled_seconds * 1e3;
        cards.push_str(&card(&duration(Some(waited)), "time throttled"));
    }
    format!("<div class=\"cards\">\n{cards}</div>\n")
}

fn outcomes(summary: &Summary) -> String {
    let bars: Vec<Bar> = summary
        .outcomes
        .named()
        .into_iter()
        .map(|(name, value)| Bar {
            label: name,
            value,
            class: name,
        })
        .collect();
    let mut table = table_head(&["StatusCode", "meaning", "rows", "share"]);
    for status in &summary.status_codes {
        let code = status.code.map_or("–".to_string(), |c| c.to_string());
        let share = percent(status.rows, summary.rows);
        table.push_str(&row(&[&code, &status.meaning, &count(status.rows), &share]));
    }
    table.push_str("</table>\n");
    format!(
        "<section>\n<h2>Outcomes</h2>\n<p class=\"note\">Rows per outcome of the report, then \
         per last StatusCode the service gave.</p>\n{}\n{table}</section>\n",
        svg::horizontal_bars(&bars, "rows per outcome")
    )
}

fn score_bins(stats: &ScoreStats) -> Vec<Bin> {
    let bins = stats.buckets.iter().map(|b| Bin {
        from: f64::from(b.from),
        to: f64::from(b.to),
        rows: b.rows,
    });
    bins.collect()
}

fn authority_score(stats: &ScoreStats) -> String {
    let mut html = String::from("<section>\n<h2>AuthorityComparisonScore</h2>\n");
    html.push_str(
        "<p class=\"note\">How well each face matched the authoritative photo, 0 to 100, in \
         10-point buckets. Each dashed line is a threshold of the service's reference with \
         its false-accept rate (FAR): a score at or above 95 is expected to accept the wrong \
         person about once in 100,000 comparisons. The score is advisory; the verdict is the \
         StatusCode.</p>\n",
    );
    if stats.rows == 0 {
        html.push_str("<p class=\"note\">No row has this score.</p>\n</section>\n");
        return html;
    }
    let markers: Vec<Marker> = stats
        .thresholds
        .iter()
        .map(|t| Marker {
            at: t.score,
            label: format!("{} · FAR {}", t.score, t.false_accept_rate),
        })
        .collect();
    html.push_str(&svg::histogram(
        &score_bins(stats),
        (0.0, 100.0),
        &markers,
        "AuthorityComparisonScore histogram with threshold lines",
    ));
    html.push_str(&threshold_table(stats));
    html.push_str(&score_table(stats));
    html.push_str("</section>\n");
    html
}

fn threshold_table(stats: &ScoreStats) -> String {
    let mut table = table_head(&[
        "threshold",
        "false-accept rate",
        "rows at or above",
        "share",
    ]);
    for t in &stats.thresholds {
        table.push_str(&row(&[
            &format!("≥ {}", t.score),
            &t.false_accept_rate,
            &count(t.rows),
            &percent(t.rows, stats.rows),
        ]));
    }
    table.push_str("</table>\n");
    table
}

fn score_table(stats: &ScoreStats) -> String {
    let score = |s: Option<f64>| s.map_or("–".to_string(), |s| format!("{s:.2}"));
    let mut table = table_head(&["rows scored", "min", "p50", "p90", "max", "out of range"]);
    table.push_str(&row(&[
        &count(stats.rows),
        &score(stats.min),
        &score(stats.p50),
        &score(stats.p90),
        &score(stats.max),
        &count(stats.out_of_range),
    ]));
    table.push_str("</table>\n");
    table
}

fn similarity_score(stats: &ScoreStats) -> String {
    let mut html = String::from("<section>\n<h2>SimilarityScore</h2>\n");
    html.push_str(
        "<p class=\"note\">How similar the face photo was to the portrait on the ID card, 0 to \
         100. It means something only for rows that sent both photos.</p>\n",
    );
    if stats.rows == 0 {
        html.push_str("<p class=\"note\">No row has this score.</p>\n</section>\n");
        return html;
    }
    html.push_str(&svg::histogram(
        &score_bins(stats),
        (0.0, 100.0),
        &[],
        "SimilarityScore histogram",
    ));
    html.push_str(&score_table(stats));
    html.push_str("</section>\n");
    html
}

fn error_codes(summary: &Summary) -> String {
    let mut html = String::from("<section>\n<h2>Error codes</h2>\n");
    html.push_str(
        "<p class=\"note\">Rows per error code they ended with, the ten most frequent, the \
         rest as one bar.</p>\n",
    );
    let shown: &[ErrorCount] = &summary.error_codes[..summary.error_codes.len().min(TOP_ERRORS)];
    let rest: u64 = summary.error_codes[shown.len()..]
        .iter()
        .map(|e| e.rows)
        .sum::<u64>()
        + summary.other_error_codes;
    if shown.is_empty() && rest == 0 {
        html.push_str("<p class=\"note\">No row ended with an error code.</p>\n</section>\n");
        return html;
    }
    let mut bars: Vec<Bar> = shown
        .iter()
        .map(|e| Bar {
            label: &e.code,
            value: e.rows,
            class: "bar",
        })
        .collect();
    if rest > 0 {
        bars.push(Bar {
            label: "other",
            value: rest,
            class: "other",
        });
    }
    html.push_str(&svg::horizontal_bars(&bars, "rows per error code"));
    html.push_str("</section>\n");
    html
}

fn throughput(throughput: &Throughput) -> String {
    let mut html = String::from("<section>\n<h2>Throughput</h2>\n");
    let width = throughput.bucket_seconds;
    let _ = writeln!(
        html,
        "<p class=\"note\">Rows completed per {}, by the time each row got its outcome (UTC). \
         {} rows completed; {} rows per second overall.</p>",
        escape(&seconds_name(width)),
        count(throughput.completed),
        per_second(throughput.rows_per_second)
    );
    if throughput.series.is_empty() {
        html.push_str("<p class=\"note\">No row completed.</p>\n</section>\n");
        return html;
    }
    let ticks: Vec<String> = throughput
        .series
        .iter()
        .map(|p| tick_label(&p.start, width, throughput))
        .collect();
    let tips: Vec<String> = throughput
        .series
        .iter()
        .map(|p| format!("{}: {} rows", p.start, p.rows))
        .collect();
    let columns: Vec<Column> = throughput
        .series
        .iter()
        .zip(ticks.iter().zip(&tips))
        .map(|(p, (tick, tip))| Column {
            tick,
            tip,
            rows: p.rows,
        })
        .collect();
    html.push_str(&svg::columns(&columns, "rows completed over time"));
    html.push_str("</section>\n");
    html
}

/// A short time label for a bucket starting at `start` (RFC 3339 to the second): the
/// date for buckets of days, the time of day when the run fits in one day.
fn tick_label(start: &str, width: u64, throughput: &Throughput) -> String {
    let one_day = matches!(
        (&throughput.first_completed_at, &throughput.last_completed_at),
        (Some(a), Some(b)) if a.get(..10) == b.get(..10)
    );
    let part = |range: std::ops::Range<usize>| start.get(range).unwrap_or(start).to_string();
    match width {
        w if w >= 86_400 => part(0..10),
        w if w < 60 && one_day => part(11..19),
        _ if one_day => part(11..16),
        _ => format!("{} {}", part(5..10), part(11..16)),
    }
}

fn seconds_name(seconds: u64) -> String {
    match seconds {
        1 => "second".to_string(),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => format!("{s} seconds"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        unit.to_string()
    } else {
        format!("{n} {unit}s")
    }
}

fn calls(summary: &Summary) -> String {
    let mut html = String::from("<section>\n<h2>Calls and latency</h2>\n");
    let Some(calls) = &summary.calls else {
        html.push_str("<p class=\"note\">The ledger holds no call metrics for this run.</p>\n");
        html.push_str(&row_latency(&summary.row_latency));
        html.push_str("</section>\n");
        return html;
    };
    let _ = writeln!(
        html,
        "<p class=\"note\">Over {} run(s), {} of running. Workers waited {} for the rate \
         limiter and slept {} after {} throttled answers. Latencies are the upper bounds of \
         log-spaced buckets, at most 13 % above the true value.</p>",
        calls.runs,
        duration(Some(calls.wall_seconds * 1e3)),
        duration(Some(calls.limiter_wait_seconds * 1e3)),
        duration(Some(calls.throttled_seconds * 1e3)),
        count(calls.throttled_answers),
    );
    let mut table = table_head(&[
        "action",
        "calls",
        "errors",
        "throttled",
        "retries",
        "p50",
        "p90",
        "p99",
        "max",
    ]);
    for action in &calls.actions {
        table.push_str(&latency_row(
            &[
                action.action.as_str(),
                &count(action.calls),
                &count(action.errors),
                &count(action.throttled),
                &count(action.retries),
            ],
            &action.latency,
        ));
    }
    table.push_str("</table>\n");
    html.push_str(&table);
    html.push_str(&row_latency(&summary.row_latency));
    html.push_str("</section>\n");
    html
}

fn row_latency(latency: &LatencyStats) -> String {
    let mut table = table_head(&["rows", "p50", "p90", "p99", "max"]);
    table.push_str(&latency_row(&[&count(latency.count)], latency));
    table.push_str("</table>\n");
    format!(
        "<p class=\"note\">Per row, from its first submission to its outcome, review \
         included:</p>\n{table}"
    )
}

fn latency_row(cells: &[&str], latency: &LatencyStats) -> String {
    let times = [
        latency.p50_ms,
        latency.p90_ms,
        latency.p99_ms,
        latency.max_ms,
    ]
    .map(duration);
    let mut all: Vec<&str> = cells.to_vec();
    all.extend(times.iter().map(String::as_str));
    row(&all)
}

fn table_head(headers: &[&str]) -> String {
    let cells: String = headers
        .iter()
        .map(|h| format!("<th>{}</th>", escape(h)))
        .collect();
    format!("<table>\n<tr>{cells}</tr>\n")
}

fn row(cells: &[&str]) -> String {
    let cells: String = cells
        .iter()
        .map(|c| format!("<td>{}</td>", escape(c)))
        .collect();
    format!("<tr>{cells}</tr>\n")
}

/// A count with thousands separators: 1,234,567.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate with two decimals, or three when it is below one.
fn per_second(rate: Option<f64>) -> String {
    match rate {
        None => "–".to_string(),
        Some(r) if r < 1.0 => format!("{r:.3}"),
        Some(r) => format!("{r:.2}"),
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".to_string();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

/// A duration given in milliseconds, in the unit that reads best.
fn duration(ms: Option<f64>) -> String {
    match ms {
        None => "–".to_string(),
        Some(ms) if ms < 1.0 => format!("{ms:.2} ms"),
        Some(ms) if ms < 1_000.0 => format!("{ms:.0} ms"),
        Some(ms) if ms < 60_000.0 => format!("{:.2} s", ms / 1e3),
        Some(ms) if ms < 3_600_000.0 => format!("{:.1} min", ms / 60e3),
        Some(ms) => format!("{:.1} h", ms / 3_600e3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(None), "–");
        assert_eq!(duration(Some(0.5)), "0.50 ms");
        assert_eq!(duration(Some(123.4)), "123 ms");
        assert_eq!(duration(Some(2_500.0)), "2.50 s");
        assert_eq!(duration(Some(90_000.0)), "1.5 min");
        assert_eq!(duration(Some(7_200_000.0)), "2.0 h");
    }

    #[test]
    fn bucket_widths_are_named() {
        assert_eq!(seconds_name(1), "second");
        assert_eq!(seconds_name(5), "5 seconds");
        assert_eq!(seconds_name(60), "minute");
        assert_eq!(seconds_name(900), "15 minutes");
        assert_eq!(seconds_name(7_200), "2 hours");
        assert_eq!(seconds_name(172_800), "2 days");
    }
}
