//! The whole pipeline, end to end: generated rows with three photos each, run by the real
//! binary (`cloudauth-batch run`) against a sandbox in this process, the way a user runs
//! it against the service.
//!
//! Four scenarios, each printing its figures (BENCHMARKS.md collects them):
//!
//! - `throughput`: no added latency and no quota. Rows per second, and CPU seconds per
//!   1000 rows of the tool and of the sandbox.
//! - `quota`: 300 ms ± 100 ms of latency and a quota of 200 SubmitMaterials a second,
//!   with `concurrency: auto`. The achieved rate over the quota.
//! - `memory`: the tool's peak resident memory on a 100,000-row and a 1,000,000-row CSV,
//!   whose rows share a pool of photos (of 20 KB unless `--photo-kb` says otherwise).
//! - `startup`: how long after the tool starts its first request reaches the sandbox, on
//!   a 1,000,000-row CSV, with the progress bar counting the rows beside the run (the tool
//!   runs in a pseudo-terminal, through `script`, for that).
//!
//! ```text
//! cargo bench --bench pipeline                          # all four
//! cargo bench --bench pipeline -- quota                 # one
//! cargo bench --bench pipeline -- memory --rows 20000,200000 --photo-kb 100
//! ```
//!
//! Linux only: CPU time and memory are read from `/proc`.

// The figures are this program's output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudauth_batch::cloudauth::Action;
use cloudauth_batch::sandbox::config::UnknownIds;
use cloudauth_batch::sandbox::synthetic::portrait;
use cloudauth_batch::sandbox::synthetic::{chinese_name, id_card_front, id_number, jpeg, mobile};
use cloudauth_batch::sandbox::{
    Faults, Sandbox, SandboxConfig, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET,
};

/// The binary under test, built by cargo in the same profile as this benchmark.
const BINARY: &str = env!("CARGO_BIN_EXE_cloudauth-batch");

/// Distinct photo sets the rows take turns with. Files this size stay in the page cache,
/// as the photos of a real campaign on a local disk would after the first read.
const POOL: usize = 16;

/// The quota of scenario `quota`, calls a second.
const QUOTA: u32 = 200;

/// Rates that no generated run reaches: "no quota".
const UNLIMITED: &str = "100000/s";

/// Linux's USER_HZ, the unit of the CPU times in `/proc/*/stat`, on every architecture
/// Rust supports Linux on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The photos of a row in every scenario but `memory`: three of about 200 KB.
const PHOTO_BYTES: usize = 200_000;

/// The photos of scenario `memory`: three of about 20 KB, so that a million rows take
/// minutes rather than an hour. What the rows in flight hold is bounded by
/// `images.in_flight` whatever the photos' size; `throughput` shows the peak with
/// 200 KB photos.
const MEMORY_PHOTO_BYTES: usize = 20_000;

fn main() {
    let options = Options::from_args();
    let mut pools: Vec<Photos> = Vec::new();
    for scenario in &options.scenarios {
        let size = match scenario {
            Scenario::Memory => options.photo_bytes.unwrap_or(MEMORY_PHOTO_BYTES),
            _ => options.photo_bytes.unwrap_or(PHOTO_BYTES),
        };
        if !pools.iter().any(|p| p.target == size) {
            println!("generating {POOL} photo sets of 3 x {} KB", size / 1000);
            pools.push(Photos::generate(size));
        }
        let Some(photos) = pools.iter().find(|p| p.target == size) else {
            continue;
        };
        match scenario {
            Scenario::Throughput => throughput(photos, options.rows_or(&[3_000])),
            Scenario::Quota => quota(photos, options.rows_or(&[8_000])),
            Scenario::Memory => memory(photos, options.rows_or(&[100_000, 1_000_000])),
            Scenario::Startup => startup(photos, options.rows_or(&[1_000_000])),
        }
    }
}

// ---- scenarios -------------------------------------------------------------------------

/// (a) As fast as the tool and the sandbox can go on this machine.
fn throughput(photos: &Photos, sizes: &[usize]) {
    for &rows in sizes {
        let campaign = Campaign::new(rows, photos, UNLIMITED);
        let sandbox = sandbox(Faults::default(), &[]);
        let run = campaign.run(&sandbox, &[]);
        run.expect_every_row(&campaign);

        let per_thousand = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / rows as f64;
        println!(
            "\nthroughput: {rows} rows, 3 x {} KB photos, no latency, no quota",
            photos.kb()
        );
        println!(
            "  wall time               {:>10.2} s",
            run.wall.as_secs_f64()
        );
        println!(
            "  rows per second         {:>10.1}",
            rows as f64 / run.wall.as_secs_f64()
        );
        println!(
            "  tool CPU per 1000 rows  {:>10.3} s",
            per_thousand(run.tool_cpu)
        );
        println!(
            "  sandbox CPU per 1000    {:>10.3} s",
            per_thousand(run.sandbox_cpu)
        );
        println!("  tool peak memory        {:>10.1} MB", mb(run.peak_rss));
    }
}

/// (b) Latency and a quota as in production: the quota should be the only limit.
fn quota(photos: &Photos, sizes: &[usize]) {
    for &rows in sizes {
        let rate = format!("{QUOTA}/s");
        let campaign = Campaign::new(rows, photos, &rate);
        let faults = Faults {
            latency_mean_ms: 300,
            latency_jitter_ms: 100,
            ..Faults::default()
        };
        let quotas = [
            (Action::GetVerifyToken, QUOTA),
            (Action::SubmitMaterials, QUOTA),
        ];
        let sandbox = sandbox(faults, &quotas);
        let done = AtomicBool::new(false);
        let (run, samples) = std::thread::scope(|threads| {
            let sampler = threads.spawn(|| Samples::take(&sandbox, &done));
            let run = campaign.run(&sandbox, &[]);
            done.store(true, Ordering::Relaxed);
            (run, sampler.join().expect("the sampler does not panic"))
        });
        run.expect_every_row(&campaign);

        let stats = sandbox.stats().action(Action::SubmitMaterials);
        let quota = f64::from(QUOTA);
        println!("\nquota: {rows} rows, 300 ms ± 100 ms latency, {QUOTA} SubmitMaterials/s");
        println!(
            "  wall time               {:>10.2} s",
            run.wall.as_secs_f64()
        );
        match samples.steady_rate() {
            Some(steady) => println!(
                "  achieved, steady        {steady:>10.1} /s = {:.2} % of the quota",
                100.0 * steady / quota
            ),
            None => println!("  achieved, steady        too short a run to tell"),
        }
        if let Some(overall) = samples.overall_rate() {
            println!(
                "  achieved, whole run     {overall:>10.1} /s = {:.2} % (slow start and tail included)",
                100.0 * overall / quota
            );
        }
        println!(
            "  peak in any 1 s window  {:>10}   (quota {QUOTA})",
            stats.peak_admitted_per_second
        );
        println!("  throttled answers       {:>10}", stats.throttled);
        println!("  tool peak memory        {:>10.1} MB", mb(run.peak_rss));
    }
}

/// (c) Memory must not grow with the number of rows.
fn memory(photos: &Photos, sizes: &[usize]) {
    let mut peaks = Vec::new();
    for &rows in sizes {
        let campaign = Campaign::new(rows, photos, UNLIMITED);
        let sandbox = sandbox(Faults::default(), &[]);
        let run = campaign.run(&sandbox, &[]);
        run.expect_every_row(&campaign);
        println!(
            "\nmemory: {rows} rows, 3 x {} KB photos, in {:.1} s ({:.0} rows/s): tool peak resident memory {:.1} MB",
            photos.kb(),
            run.wall.as_secs_f64(),
            rows as f64 / run.wall.as_secs_f64(),
            mb(run.peak_rss)
        );
        peaks.push((rows, run.peak_rss));
    }
    if let [(small_rows, small), .., (large_rows, large)] = peaks[..] {
        println!(
            "  {large_rows} rows over {small_rows} rows: {:.2}x the memory for {:.0}x the rows",
            large as f64 / small as f64,
            large_rows as f64 / small_rows as f64
        );
    }
}

/// (d) No scan of the input before the first request.
fn startup(photos: &Photos, sizes: &[usize]) {
    for &rows in sizes {
        let campaign = Campaign::new(rows, photos, UNLIMITED);
        let terminal = Path::new("/usr/bin/script").exists();
        for through_terminal in [false, true] {
            if through_terminal && !terminal {
                println!("  (no /usr/bin/script: the run with a progress bar is left out)");
                continue;
            }
            let sandbox = sandbox(Faults::default(), &[]);
            // A ledger of its own, so that the second run does not resume the first.
            let ledger = campaign
                .dir
                .path()
                .join(format!("out/startup-{through_terminal}.sqlite"));
            let report = campaign
                .dir
                .path()
                .join(format!("out/startup-{through_terminal}.csv"));
            let (ledger, report) = (ledger.display().to_string(), report.display().to_string());
            let args = ["--limit", "200", "--ledger", &ledger, "--report", &report];
            let started = Instant::now();
            let mut child = campaign.spawn(&sandbox, &args, through_terminal);
            let first = first_request(&sandbox, &mut child, Duration::from_secs(30));
            let status = child.wait().expect("the tool runs");
            let bar = if through_terminal {
                "in a terminal, counting rows for the progress bar"
            } else {
                "without a terminal"
            };
            match first {
                Some(at) => println!(
                    "\nstartup: {rows}-row CSV, {bar}: first request {:.1} ms after start ({status})",
                    at.duration_since(started).as_secs_f64() * 1000.0
                ),
                None => {
                    println!("\nstartup: {rows}-row CSV, {bar}: no request within 30 s ({status})")
                }
            }
        }
    }
}

// ---- the campaign ----------------------------------------------------------------------

/// Generated input, photos and spec in a folder of their own.
struct Campaign {
    dir: tempfile::TempDir,
    rows: usize,
    spec: PathBuf,
}

impl Campaign {
    fn new(rows: usize, photos: &Photos, rate: &str) -> Campaign {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary folder");
        photos.write(&dir.path().join("photos"));
        write_rows(&dir.path().join("rows.csv"), rows);
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, spec_text(rate)).expect("a writable temporary folder");
        Campaign { dir, rows, spec }
    }

    /// Starts `cloudauth-batch run` on the spec against `sandbox`.
    fn spawn(&self, sandbox: &Sandbox, extra: &[&str], through_terminal: bool) -> Child {
        let mut args: Vec<String> = ["run", &self.spec.display().to_string()]
            .into_iter()
            .map(str::to_string)
            .collect();
        args.extend(["--endpoint".to_string(), sandbox.url()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut command = if through_terminal {
            let mut line = shell_quote(BINARY);
            for arg in &args {
                line.push(' ');
                line.push_str(&shell_quote(arg));
            }
            let mut script = Command::new("/usr/bin/script");
            script.args(["-qefc", &line, "/dev/null"]);
            script
        } else {
            let mut tool = Command::new(BINARY);
            tool.args(&args).arg("--no-progress");
            tool
        };
        command
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tool starts")
    }

    /// Runs the tool to its end, measuring its time, CPU and memory.
    fn run(&self, sandbox: &Sandbox, extra: &[&str]) -> Run {
        let before = Cpu::now();
        let started = Instant::now();
        let mut child = self.spawn(sandbox, extra, false);
        let peak = PeakMemory::watch(child.id());
        let stderr = child.stderr.take().map(std::io::read_to_string);
        let status = child.wait().expect("the tool runs");
        let wall = started.elapsed();
        let after = Cpu::now();
        Run {
            status,
            wall,
            tool_cpu: after.children - before.children,
            sandbox_cpu: after.own - before.own,
            peak_rss: peak.finish(),
            stderr: stderr.and_then(Result::ok).unwrap_or_default(),
        }
    }

    /// The report's rows.
    fn report_rows(&self) -> usize {
        let report = self.dir.path().join("out/report.csv");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        text.lines().count().saturating_sub(1)
    }
}

/// What one run of the tool took.
struct Run {
    status: ExitStatus,
    wall: Duration,
    tool_cpu: Duration,
    sandbox_cpu: Duration,
    peak_rss: u64,
    stderr: String,
}

impl Run {
    /// Stops the benchmark unless every row has a verdict: figures of a run that failed
    /// measure nothing.
    fn expect_every_row(&self, campaign: &Campaign) {
        let reported = campaign.report_rows();
        if !self.status.success() || reported != campaign.rows {
            eprintln!("{}", self.stderr);
            panic!(
                "the run ended with {} and reported {reported} of {} rows",
                self.status, campaign.rows
            );
        }
    }
}

/// The spec of a generated campaign, every action at `rate`.
fn spec_text(rate: &str) -> String {
    format!(
        "version: 1
name: bench
service:
  endpoint: sandbox
  biz: RPBasic
  rate: {{ GetVerifyToken: {rate}, SubmitMaterials: {rate}, GetStatus: {rate} }}
  concurrency: auto
source: {{ path: rows.csv, key: account_id }}
ticket_id: \"bench-{{account_id}}\"
materials:
  Name: {{ column: real_name }}
  IdentificationNumber: {{ column: id_number }}
  Mobile: {{ column: mobile }}
  FacePic: {{ file: \"photos/face-{{photo}}.jpg\" }}
  IdCardFrontPic: {{ file: \"photos/front-{{photo}}.jpg\" }}
  IdCardBackPic: {{ file: \"photos/back-{{photo}}.jpg\" }}
polling: {{ interval: 1s, timeout: 2m }}
report: {{ path: out/report.csv }}
ledger: {{ path: out/ledger.sqlite }}
"
    )
}

/// Writes `rows` generated accounts, each naming one of the photo sets.
fn write_rows(path: &Path, rows: usize) {
    let file = std::fs::File::create(path).expect("a writable temporary folder");
    let mut out = BufWriter::new(file);
    let mut line = String::new();
    writeln!(out, "account_id,real_name,id_number,mobile,photo").expect("writing the rows");
    for row in 0..rows {
        let person = row as u64 + 1;
        line.clear();
        let _ = writeln!(
            line,
            "acct{row:08},{},{},{},{}",
            chinese_name(person),
            id_number(person),
            mobile(person),
            row % POOL
        );
        out.write_all(line.as_bytes()).expect("writing the rows");
    }
    out.flush().expect("writing the rows");
}

/// A sandbox that accepts the generated people, with `faults` and `quotas`.
fn sandbox(faults: Faults, quotas: &[(Action, u32)]) -> Sandbox {
    let config = SandboxConfig {
        unknown_ids: UnknownIds::Accept,
        quotas: quotas.iter().copied().collect(),
        faults,
        ..SandboxConfig::default()
    };
    Sandbox::start(config).expect("the sandbox starts")
}

/// `text` quoted for `sh -c`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

// ---- photos ----------------------------------------------------------------------------

/// The pool of photo sets: a face, and both sides of the ID card.
struct Photos {
    sets: Vec<[Vec<u8>; 3]>,
    target: usize,
}

impl Photos {
    fn generate(target: usize) -> Photos {
        let sets = (0..POOL as u64)
            .map(|person| {
                let face = sized(target, |side| portrait(person, 1, side));
                let front = sized(target, |side| id_card_front(person, side));
                let back = sized(target, |side| portrait(person + 1000, 2, side));
                [face, front, back]
            })
            .collect();
        Photos { sets, target }
    }

    fn kb(&self) -> usize {
        self.target / 1000
    }

    fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("a writable temporary folder");
        for (i, set) in self.sets.iter().enumerate() {
            for (name, bytes) in ["face", "front", "back"].iter().zip(set) {
                std::fs::write(dir.join(format!("{name}-{i}.jpg")), bytes)
                    .expect("a writable temporary folder");
            }
        }
    }
}

/// A JPEG of `draw` within 10 % of `target` bytes, found by scaling the picture's side.
fn sized(target: usize, draw: impl Fn(u32) -> image::RgbImage) -> Vec<u8> {
    let mut side = 480.0_f64;
    let mut best = Vec::new();
    for _ in 0..6 {
        let bytes = jpeg(&draw(side as u32), 92);
        let ratio = target as f64 / bytes.len() as f64;
        best = bytes;
        if (0.9..=1.1).contains(&ratio) {
            break;
        }
        side = (side * ratio.sqrt()).clamp(64.0, 4000.0);
    }
    best
}

// ---- measuring -------------------------------------------------------------------------

/// CPU time of this process (the sandbox, mostly) and of its finished children.
struct Cpu {
    own: Duration,
    children: Duration,
}

impl Cpu {
    fn now() -> Cpu {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces:
        // utime and stime are the 14th and 15th fields, cutime and cstime the 16th and 17th.
        let fields: Vec<f64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default();
        let ticks = |from: usize| {
            let sum = fields.get(from).unwrap_or(&0.0) + fields.get(from + 1).unwrap_or(&0.0);
            Duration::from_secs_f64(sum / TICKS_PER_SECOND)
        };
        Cpu {
            own: ticks(11),
            children: ticks(13),
        }
    }
}

/// Follows a process's high-water mark of resident memory (`VmHWM`) until it exits.
struct PeakMemory {
    done: std::sync::Arc<AtomicBool>,
    peak: std::sync::Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakMemory {
    fn watch(pid: u32) -> PeakMemory {
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let peak = std::sync::Arc::new(AtomicU64::new(0));
        let thread = {
            let (done, peak) = (done.clone(), peak.clone());
            std::thread::spawn(move || {
                let path = format!("/proc/{pid}/status");
                while !done.load(Ordering::Relaxed) {
                    if let Some(bytes) = high_water_mark(&path) {
                        peak.fetch_max(bytes, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PeakMemory { done, peak, thread }
    }

    fn finish(self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// `VmHWM` of a `/proc/PID/status` file, in bytes.
fn high_water_mark(path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Waits for the first call to reach `sandbox`, while `child` runs.
fn first_request(sandbox: &Sandbox, child: &mut Child, timeout: Duration) -> Option<Instant> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        let stats = sandbox.stats();
        if stats.actions.values().any(|a| a.arrived > 0) {
            return Some(Instant::now());
        }
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_micros(250));
    }
    None
}

/// Counts of SubmitMaterials calls admitted by the sandbox, and when each was taken.
struct Samples(Vec<(Instant, u32)>);

impl Samples {
    /// Counts every 100 ms until `done`.
    fn take(sandbox: &Sandbox, done: &AtomicBool) -> Samples {
        let mut samples = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let admitted = sandbox.stats().action(Action::SubmitMaterials).admitted;
            samples.push((Instant::now(), admitted));
            std::thread::sleep(Duration::from_millis(100));
        }
        Samples(samples)
    }

    /// From the first admitted call to the moment the count stopped growing.
    fn span(&self) -> Option<((Instant, u32), (Instant, u32))> {
        let first = self.0.iter().find(|(_, n)| *n > 0)?;
        let total = self.0.last()?.1;
        let last = self.0.iter().find(|(_, n)| *n == total)?;
        Some((*first, *last))
    }

    /// The rate over the whole run.
    fn overall_rate(&self) -> Option<f64> {
        let ((start, n0), (end, n1)) = self.span()?;
        let seconds = end.duration_since(start).as_secs_f64();
        (seconds > 0.0).then(|| f64::from(n1 - n0) / seconds)
    }

    /// The rate between 3 s after the first call (past the limiter's slow start) and 1 s
    /// before the last (before the last rows drain).
    fn steady_rate(&self) -> Option<f64> {
        let ((start, _), (end, _)) = self.span()?;
        let from = start + Duration::from_secs(3);
        let to = end.checked_sub(Duration::from_secs(1))?;
        let inside: Vec<&(Instant, u32)> = self
            .0
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .collect();
        let (first, last) = (inside.first()?, inside.last()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds >= 1.0).then(|| f64::from(last.1 - first.1) / seconds)
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

// ---- options ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Throughput,
    Quota,
    Memory,
    Startup,
}

struct Options {
    scenarios: Vec<Scenario>,
    rows: Option<Vec<usize>>,
    photo_bytes: Option<usize>,
}

impl Options {
    /// Reads the arguments after `--`; cargo adds `--bench`, which says nothing here.
    fn from_args() -> Options {
        let mut options = Options {
            scenarios: Vec::new(),
            rows: None,
            photo_bytes: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => {}
                "throughput" => options.scenarios.push(Scenario::Throughput),
                "quota" => options.scenarios.push(Scenario::Quota),
                "memory" => options.scenarios.push(Scenario::Memory),
                "startup" => options.scenarios.push(Scenario::Startup),
                "--rows" => {
                    let list = args.next().unwrap_or_default();
                    let rows: Option<Vec<usize>> =
                        list.split(',').map(|n| n.trim().parse().ok()).collect();
                    options.rows = Some(rows.unwrap_or_else(|| usage(&list)));
                }
                "--photo-kb" => {
                    let kb = args.next().unwrap_or_default();
                    let kb: usize = kb.parse().unwrap_or_else(|_| usage(&kb));
                    options.photo_bytes = Some(kb * 1000);
                }
                other => usage(other),
            }
        }
        if options.scenarios.is_empty() {
            options.scenarios = vec![
                Scenario::Throughput,
                Scenario::Quota,
                Scenario::Memory,
                Scenario::Startup,
            ];
        }
        options
    }

    fn rows_or<'a>(&'a self, default: &'a [usize]) -> &'a [usize] {
        self.rows.as_deref().unwrap_or(default)
    }
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "pipeline bench: cannot use {bad:?}\n\
         usage: cargo bench --bench pipeline -- [throughput|quota|memory|startup]... \
         [--rows N[,N...]] [--photo-kb K]"
    );
    std::process::exit(2)
}
