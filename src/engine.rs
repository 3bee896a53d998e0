//! Runs a pipeline's rows through Cloudauth: GetVerifyToken, SubmitMaterials, then
//! GetStatus while a submission is in review, recording each step in the ledger before
//! moving on.
//!
//! A reader thread streams the input, skips rows the ledger has finished, resolves each
//! row's materials and hands the rest to the workers: threads that make the calls, as many
//! as the gate may admit rows, blocked on the network or the quota most of the time. The
//! CPU work of a row, reading its photos and encoding them into the body, goes to a rayon
//! pool with a thread per core. A row whose submission is in review does not hold a
//! worker: it waits in the review queue, and whichever worker is free when its next poll
//! falls due asks GetStatus.
//!
//! SubmitMaterials is never repeated blindly. Once it may have reached the service (no
//! answer, a 5xx, `Error.DuplicatedTicketId`, or a crash after the ledger said `sending`),
//! the row is settled with GetStatus: a verdict is taken as it is, 0 is polled, and only
//! -1 (the submission never landed) allows sending again.

// `Failure` carries the call's error and its classification up a short chain of calls and
// is never stored, so boxing it would only add allocations on the error path.
#![allow(clippy::result_large_err)]

mod budget;
mod gate;
mod review;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::breaker::{Breaker, BreakerRule, is_infrastructure};
use crate::checks::{self, Problem, Reason};
use crate::cloudauth::api::{Action, MaterialType, StsToken, Verdict, VerifyStatus};
use crate::cloudauth::client::{Client, Reply};
use crate::cloudauth::error::CallError;
use crate::images::Depth;
use crate::ledger::{Entry, Finished, Ledger, LedgerError, Outcome, State};
use crate::limiter::Limiter;
use crate::materials::{self, Buffers, Loaded, Material};
use crate::progress::Progress;
use crate::retry::{Backoff, Decision, classify};
use crate::shard::Shard;
use crate::source::{Row, RowResult, Rows};
use crate::spec::Pipeline;
use crate::summary::Metrics;
use budget::{Budget, Held};
pub use gate::Gate;
use review::{ReviewQueue, Waiting};

/// How many times a row may go back to SubmitMaterials after GetStatus said -1 or its
/// token expired, before it is given up on.
const MAX_ROUNDS: u32 = 4;

/// A VerifyToken is renewed when less than this is left of its life.
const TOKEN_MARGIN_SECS: i64 = 60;

/// Options of one run that are not part of the spec.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Process at most this many input rows.
    pub limit: Option<u64>,
    /// Set by SIGINT or SIGTERM: stop taking rows, finish what is in flight.
    pub interrupt: Arc<AtomicBool>,
    /// Stop taking rows at this moment (`--max-duration`).
    pub deadline: Option<Instant>,
    /// When to stop a run whose rows keep failing.
    pub breaker: BreakerRule,
    /// Which finished rows to verify again.
    pub reverify: Reverify,
    /// Counters of calls, latencies and waits, for the summary.
    pub metrics: Arc<Metrics>,
    /// The shard whose rows this run takes; all rows without one.
    pub shard: Option<Shard>,
}

/// Which finished rows a run verifies again, each under a fresh ticket id derived from the
/// template: `<ticket>-r2`, `<ticket>-r3`, ... so that a new attempt is never confused with
/// an earlier one.
#[derive(Debug, Clone, Default)]
pub struct Reverify {
    /// Rows whose outcome is one of these.
    pub outcomes: Vec<Outcome>,
    /// Rows whose verdict (passed or failed) is older than this.
    pub older_than: Option<Duration>,
}

impl Reverify {
    /// Whether `entry` is to be verified again.
    pub fn wants(&self, entry: &Entry) -> bool {
        let Some(outcome) = entry.outcome else {
            return false;
        };
        if self.outcomes.contains(&outcome) {
            return true;
        }
        let Some(age) = self.older_than.filter(|_| outcome.is_verdict()) else {
            return false;
        };
        let format = time::format_description::well_known::Rfc3339;
        let completed = entry
            .completed_at
            .as_deref()
            .and_then(|at| time::OffsetDateTime::parse(at, &format).ok());
        completed.is_some_and(|at| time::OffsetDateTime::now_utc() - at > age)
    }
}

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// Credentials or permissions are wrong.
    Auth(String),
    /// The ledger or the input could not be used.
    Ledger(String),
    /// Too many rows failed for infrastructure reasons.
    Breaker(String),
    /// SIGINT or SIGTERM arrived.
    Interrupted,
    /// `--max-duration` was reached.
    Deadline,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Rows read from the input in this run.
    pub rows_read: u64,
    /// Why it stopped early, if it did.
    pub halted: Option<Halt>,
}

/// A unit of work: one row, with what the ledger knew of it.
#[derive(Debug, Clone)]
struct Job {
    number: u64,
    key: String,
    ticket_id: String,
    materials: Vec<Material>,
    resume: Resume,
}

#[derive(Debug, Clone)]
enum Resume {
    /// Nothing was sent.
    Fresh,
    /// A token is known and no submission left.
    Token { token: String, expires_at: i64 },
    /// A submission may have reached the service.
    Settle,
}

/// A call that did not succeed.
enum Failure {
    /// The call failed and the retry policy decided what it means.
    Call(CallError, Decision),
    /// The ledger could not be written; the run stops.
    Ledger(LedgerError),
}

impl From<LedgerError> for Failure {
    fn from(error: LedgerError) -> Self {
        Failure::Ledger(error)
    }
}

/// What GetStatus said about a submission that may have landed.
enum Settled {
    /// It never landed: send it again.
    NotLanded,
    /// The row is finished or waiting in review.
    Handled,
}

/// Everything the workers share.
pub struct Engine<'a> {
    pipeline: &'a Pipeline,
    client: &'a Client,
    ledger: &'a Ledger,
    limiter: &'a Limiter,
    progress: &'a Progress,
    backoff: Backoff,
    reviews: ReviewQueue<Job>,
    stopping: AtomicBool,
    halt: Mutex<Option<Halt>>,
    options: RunOptions,
    breaker: Breaker,
    gate: Gate,
    budget: Budget,
    /// Allocations of photos and bodies, passed from row to row.
    buffers: Buffers,
    /// Reads and encodes photos, a thread per core; `None` if no thread could be started,
    /// and the workers then do it themselves.
    encoders: Option<rayon::ThreadPool>,
}

impl<'a> Engine<'a> {
    /// An engine over the given parts.
    pub fn new(
        pipeline: &'a Pipeline,
        client: &'a Client,
        ledger: &'a Ledger,
        limiter: &'a Limiter,
        progress: &'a Progress,
        options: RunOptions,
        gate: Gate,
    ) -> Self {
        Engine {
            gate,
            budget: Budget::new(pipeline.images.in_flight),
            buffers: Buffers::default(),
            encoders: rayon::ThreadPoolBuilder::new()
                .thread_name(|i| format!("cloudauth-encoder-{i}"))
                .build()
                .ok(),
            breaker: Breaker::new(options.breaker),
            options,
            pipeline,
            client,
            ledger,
            limiter,
            progress,
            backoff: Backoff::default(),
            reviews: ReviewQueue::default(),
            stopping: AtomicBool::new(false),
            halt: Mutex::new(None),
        }
    }

    /// Processes `rows` with `workers` threads and returns once every row read has an
    /// outcome, or the run was halted.
    ///
    /// The workers are plain threads rather than a rayon pool: they block on calls, and an
    /// idle rayon thread looks for work in every other thread's queue, which with hundreds
    /// of threads costs more CPU than encoding the photos.
    pub fn run(&self, rows: Rows, workers: usize) -> Result<RunResult, std::io::Error> {
        let (sender, receiver) = crossbeam_channel::bounded(workers * 2);
        // The reader has a thread of its own: Parquet decoding uses polars' own rayon pool,
        // which must not be entered from the encoders' pool.
        let rows_read = std::thread::scope(|threads| -> std::io::Result<u64> {
            let reader = threads.spawn(move || self.read(rows, &sender, self.options.limit));
            for i in 0..workers {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("cloudauth-worker-{i}"))
                    .spawn_scoped(threads, move || self.work(&receiver))?;
            }
            drop(receiver);
            Ok(reader.join().unwrap_or_default())
        })?;
        let halted = self.halt.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(RunResult { rows_read, halted })
    }

    /// Runs the CPU work `op` of a row on the encoders' pool, or here if it has none.
    fn on_encoders<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.encoders {
            Some(pool) => pool.install(op),
            None => op(),
        }
    }

    /// Asks every worker to stop taking new rows.
    pub fn stop(&self, halt: Halt) {
        match &halt {
            Halt::Interrupted | Halt::Deadline => {
                tracing::warn!(reason = ?halt, "stopping the run")
            }
            _ => tracing::error!(reason = ?halt, "stopping the run"),
        }
        self.halt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(halt);
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether to stop taking rows: a halt, a signal, or the deadline.
    fn stopping(&self) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return true;
        }
        if self.options.interrupt.load(Ordering::SeqCst) {
            self.stop(Halt::Interrupted);
            return true;
        }
        if self.options.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stop(Halt::Deadline);
            return true;
        }
        false
    }

    // ---- reading -------------------------------------------------------------------

    fn read(&self, rows: Rows, sender: &Sender<Job>, limit: Option<u64>) -> u64 {
        let mut read = 0;
        for item in rows.iter {
            if self.stopping() || limit.is_some_and(|l| read >= l) {
                break;
            }
            if let (Some(shard), Ok(row)) = (&self.options.shard, &item)
                && !shard.owns(
                    &row_key(row, &self.pipeline.source.key.value),
                    row_number(row),
                )
            {
                continue;
            }
            read += 1;
            let outcome = match item {
                Ok(row) => self.admit(row),
                Err(source_error) => {
                    self.stop(Halt::Ledger(source_error.to_string()));
                    break;
                }
            };
            match outcome {
                Ok(Some(job)) => {
                    if sender.send(job).is_err() {
                        break;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    self.stop(Halt::Ledger(error.to_string()));
                    break;
                }
            }
        }
        read
    }

    /// Turns an input row into a job, or records why there is nothing to do.
    fn admit(&self, row: RowResult) -> Result<Option<Job>, LedgerError> {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                let message = format!("row {} cannot be read: {}", error.number, error.message);
                self.record_orphan(error.number, &message)?;
                return Ok(None);
            }
        };
        let key = row
            .get(&self.pipeline.source.key.value)
            .unwrap_or("")
            .trim()
            .to_string();
        if key.is_empty() {
            let message = format!("the key column {} is empty", self.pipeline.source.key.value);
            self.record_orphan(row.number, &message)?;
            return Ok(None);
        }
        let known = self.ledger.get(&key)?;
        if let Some(entry) = &known
            && entry.row != row.number
        {
            let message = format!("duplicate key: row {} has the same key", entry.row);
            self.record_orphan(row.number, &message)?;
            return Ok(None);
        }
        self.job(&row, key, known)
    }

    fn job(
        &self,
        row: &Row,
        key: String,
        known: Option<Entry>,
    ) -> Result<Option<Job>, LedgerError> {
        let base_ticket = match self.pipeline.ticket_id.value.render(|c| row.get(c)) {
            Ok(ticket) => ticket,
            Err(reason) => {
                self.ledger.insert_new(row.number, &key, "")?;
                self.finish(
                    &key,
                    Finished::with_message(
                        Outcome::Skipped,
                        None,
                        format!("no ticket id: {reason}"),
                    ),
                )?;
                return Ok(None);
            }
        };
        let (ticket_id, known) = match known {
            Some(entry) if never_sent(&entry) => {
                // Nothing was paid for this row: check it again, in case the input was
                // fixed since.
                self.ledger
                    .restart(&key, &entry.ticket_id, entry.generation)?;
                let ticket_id = if entry.ticket_id.is_empty() {
                    base_ticket
                } else {
                    entry.ticket_id
                };
                (ticket_id, None)
            }
            Some(entry) if self.options.reverify.wants(&entry) => {
                let generation = entry.generation + 1;
                let ticket_id = format!("{base_ticket}-r{generation}");
                tracing::info!(
                    row = row.number,
                    generation,
                    "verifying again under a new ticket"
                );
                self.ledger.restart(&key, &ticket_id, generation)?;
                (ticket_id, None)
            }
            Some(entry) if entry.state == Some(State::Done) => {
                self.progress
                    .finish_row(entry.outcome.unwrap_or(Outcome::Error));
                return Ok(None);
            }
            // A resumed row keeps the ticket it was submitted under.
            Some(entry) => (entry.ticket_id.clone(), Some(entry)),
            None => (base_ticket, None),
        };
        if known.is_none()
            && let Some(problem) = self.ticket_problem(&key, &ticket_id)?
        {
            self.ledger.insert_new(row.number, &key, "")?;
            self.skip(&key, &[problem])?;
            return Ok(None);
        }
        self.ledger.insert_new(row.number, &key, &ticket_id)?;
        let (materials, mut problems) = materials::resolve(self.pipeline, row);
        problems.extend(checks::materials(
            &materials,
            &self.pipeline.images,
            Depth::Header,
        ));
        if !problems.is_empty() && known.is_none() {
            self.skip(&key, &problems)?;
            return Ok(None);
        }
        let resume = match known {
            Some(Entry {
                state: Some(State::Sending | State::Review),
                ..
            }) => Resume::Settle,
            Some(Entry {
                state: Some(State::Token),
                verify_token: Some(token),
                token_expires_at: Some(expires_at),
                ..
            }) => Resume::Token { token, expires_at },
            _ => Resume::Fresh,
        };
        Ok(Some(Job {
            number: row.number,
            key,
            ticket_id,
            materials,
            resume,
        }))
    }

    /// Why `ticket_id` cannot be used for the row `key`: it is empty, or another row
    /// holds it. Two rows under one ticket would each be settled with the other's verdict.
    fn ticket_problem(&self, key: &str, ticket_id: &str) -> Result<Option<Problem>, LedgerError> {
        if ticket_id.trim().is_empty() {
            let detail = "the ticket id template gives an empty ticket id";
            return Ok(Some(Problem::new(Reason::TicketMissing, detail)));
        }
        Ok(self
            .ledger
            .holder_of_ticket(ticket_id)?
            .filter(|(holder, _)| holder != key)
            .map(|(_, row)| {
                let detail = format!("row {row} has the same ticket id {ticket_id}");
                Problem::new(Reason::TicketDuplicate, detail)
            }))
    }

    /// Records a row that fails the checks as skipped, with every reason.
    fn skip(&self, key: &str, problems: &[Problem]) -> Result<(), LedgerError> {
        let code = problems.first().map(|p| p.reason.code());
        tracing::info!(code, "row skipped: it fails the checks");
        self.finish(
            key,
            Finished::with_message(Outcome::Skipped, code, Problem::join(problems)),
        )
    }

    /// Records a row that has no usable key under a key of its own, `#row-N`.
    fn record_orphan(&self, number: u64, message: &str) -> Result<(), LedgerError> {
        let key = format!("#row-{number}");
        if self
            .ledger
            .get(&key)?
            .is_some_and(|e| e.state == Some(State::Done))
        {
            self.progress.finish_row(Outcome::Skipped);
            return Ok(());
        }
        self.ledger.insert_new(number, &key, "")?;
        self.finish(
            &key,
            Finished::with_message(Outcome::Skipped, None, message),
        )
    }

    // ---- working -------------------------------------------------------------------

    fn work(&self, receiver: &Receiver<Job>) {
        loop {
            if let Some(waiting) = self.reviews.take_due(Instant::now()) {
                self.poll(waiting);
                continue;
            }
            let wait = self
                .reviews
                .time_to_next(Instant::now())
                .unwrap_or(Duration::from_millis(100));
            if !self.gate.try_enter() {
                self.gate.wait(wait.min(Duration::from_millis(100)));
                continue;
            }
            match receiver.recv_timeout(wait.min(Duration::from_millis(100))) {
                Ok(job) if self.stopping() => {
                    self.gate.leave(None);
                    drop(job);
                }
                Ok(job) => {
                    CALL_TIME.set(Duration::ZERO);
                    self.process(job);
                    self.gate.leave(Some(CALL_TIME.get()));
                }
                Err(RecvTimeoutError::Timeout) => self.gate.leave(None),
                Err(RecvTimeoutError::Disconnected) if self.reviews.is_empty() => {
                    self.gate.leave(None);
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.gate.leave(None);
                    let wait = self
                        .reviews
                        .time_to_next(Instant::now())
                        .unwrap_or_default();
                    std::thread::sleep(wait.min(Duration::from_millis(100)));
                }
            }
        }
    }

    fn process(&self, job: Job) {
        let span = tracing::debug_span!("row", row = job.number, ticket = %job.ticket_id);
        let _entered = span.enter();
        if let Err(Failure::Ledger(error)) = self.verify(job) {
            self.stop(Halt::Ledger(error.to_string()));
        }
    }

    /// Takes a row from wherever it stands to an outcome or to the review queue.
    fn verify(&self, mut job: Job) -> Result<(), Failure> {
        if matches!(job.resume, Resume::Settle) {
            match self.settle(&job)? {
                Settled::Handled => return Ok(()),
                Settled::NotLanded => job.resume = Resume::Fresh,
            }
        }
        // A token kept in the ledger comes without the StsToken an upload needs.
        let uploads = materials::footprint(&job.materials, &self.pipeline.images).uploaded > 0;
        let mut grant = match &job.resume {
            Resume::Token { token, expires_at }
                if *expires_at > unix_now() + TOKEN_MARGIN_SECS && !uploads =>
            {
                Some(Grant {
                    token: token.clone(),
                    sts: None,
                })
            }
            _ => None,
        };
        for _round in 0..MAX_ROUNDS {
            let Some(current) = self.grant(&job, grant.take())? else {
                return Ok(());
            };
            // The photos are read only with a token in hand, so that rows waiting for one
            // hold none; GetVerifyToken is not what a verification is billed for.
            let mut held = self.budget.hold(materials::held_bytes(&job.materials));
            let Some(loaded) = self.on_encoders(|| self.load(&job))? else {
                return Ok(());
            };
            let current = match current.sts {
                None if loaded.needs_upload() => match self.grant(&job, None)? {
                    Some(fresh) => fresh,
                    None => return Ok(()),
                },
                _ => current,
            };
            if let Next::Done = self.submit(&job, &current, loaded, &mut held)? {
                return Ok(());
            }
        }
        let message = format!("gave up after {MAX_ROUNDS} rounds of submission");
        self.finish(
            &job.key,
            Finished::with_message(Outcome::Error, None, message),
        )?;
        Ok(())
    }

    /// Reads and fits the row's images, or finishes the row if they cannot be used.
    fn load(&self, job: &Job) -> Result<Option<Loaded>, Failure> {
        match materials::load(&job.materials, &self.pipeline.images, &self.buffers) {
            Ok(loaded) => {
                if !loaded.notes.is_empty() {
                    tracing::info!(images = %loaded.notes.join("; "), "images made to fit");
                    self.ledger
                        .record_images(&job.key, &loaded.notes.join("; "))?;
                }
                Ok(Some(loaded))
            }
            Err(unusable) => {
                self.finish(
                    &job.key,
                    Finished::with_message(Outcome::Skipped, Some("image.unusable"), unusable.0),
                )?;
                Ok(None)
            }
        }
    }

    /// `kept` if there is one, else a new VerifyToken; `None` once the row is finished
    /// because none can be had.
    fn grant(&self, job: &Job, kept: Option<Grant>) -> Result<Option<Grant>, Failure> {
        match kept {
            Some(grant) => Ok(Some(grant)),
            None => self.verify_token(job),
        }
    }

    /// Gets a VerifyToken for the row's ticket, or finishes the row if none can be had.
    fn verify_token(&self, job: &Job) -> Result<Option<Grant>, Failure> {
        let biz = &self.pipeline.service.biz;
        let reply = self.call(Action::GetVerifyToken, || {
            Ok(self.client.get_verify_token(biz, &job.ticket_id, None))
        });
        match reply {
            Ok(reply) => {
                let token = reply.data.verify_token;
                let expires_at =
                    unix_now() + i64::try_from(token.duration_seconds).unwrap_or(i64::MAX / 2);
                self.ledger
                    .record_token(&job.key, &token.token, expires_at)?;
                Ok(Some(Grant {
                    token: token.token,
                    sts: reply.data.sts_token,
                }))
            }
            Err(Failure::Call(error, decision)) => {
                self.give_up(job, &error, &decision)?;
                Ok(None)
            }
            Err(ledger) => Err(ledger),
        }
    }

    /// Sends the row's materials once and acts on the answer. The photos as read are let
    /// go of, and `held` shrunk to the body, as soon as the body is encoded.
    fn submit(
        &self,
        job: &Job,
        grant: &Grant,
        loaded: Loaded,
        held: &mut Held<'_>,
    ) -> Result<Next, Failure> {
        let upload = |kind, bytes: &[u8]| self.upload(grant.sts.as_ref(), kind, bytes);
        // Uploads wait on the network, which the encoders must not do.
        let encoded = if loaded.needs_upload() {
            loaded.body(&grant.token, &self.buffers, upload)
        } else {
            self.on_encoders(|| loaded.body(&grant.token, &self.buffers, upload))
        };
        loaded.recycle(&self.buffers);
        let body = match encoded {
            Ok(Ok(body)) => body,
            Ok(Err(unusable)) => {
                self.finish(
                    &job.key,
                    Finished::with_message(Outcome::Skipped, Some("image.unusable"), unusable.0),
                )?;
                return Ok(Next::Done);
            }
            Err(failed) => {
                tracing::error!(row = job.number, code = %failed.code, "row given up: {}", failed.message);
                let done =
                    Finished::with_message(Outcome::Error, Some(&failed.code), failed.message);
                self.finish(&job.key, done)?;
                return Ok(Next::Done);
            }
        };
        held.shrink_to(body.len());
        tracing::debug!(materials = %materials::describe(&job.materials), body_bytes = body.len(), "submitting");
        let reply = self.call(Action::SubmitMaterials, || {
            self.ledger
                .record_sending(&job.key)
                .map_err(Failure::Ledger)?;
            Ok(self.client.submit_materials(&body))
        });
        // The body is not sent again: a row that goes round once more encodes a new one
        // for its new token.
        if let Some(text) = body.into_text() {
            self.buffers.give_body(text);
        }
        held.shrink_to(0);
        match reply {
            Ok(reply) => self
                .on_status(job, reply.data, &reply.request_id)
                .map(|()| Next::Done),
            Err(Failure::Call(_, Decision::RenewToken)) => {
                tracing::info!("VerifyToken expired; getting a new one for the same ticket");
                self.ledger.record_not_landed(&job.key)?;
                Ok(Next::Again)
            }
            Err(Failure::Call(_, Decision::Settle { reason })) => {
                tracing::warn!(%reason, "the submission may have landed; asking GetStatus");
                match self.settle(job)? {
                    Settled::Handled => Ok(Next::Done),
                    Settled::NotLanded => Ok(Next::Again),
                }
            }
            Err(Failure::Call(error, decision)) => {
                self.ledger.record_not_landed(&job.key)?;
                self.give_up(job, &error, &decision)?;
                Ok(Next::Done)
            }
            Err(ledger) => Err(ledger),
        }
    }

    /// Uploads one image to the service's OSS bucket and returns its `oss://` address.
    /// PutObject under a fresh key is safe to repeat, so every failure that may pass is
    /// retried, including one that went unanswered.
    fn upload(
        &self,
        sts: Option<&StsToken>,
        kind: MaterialType,
        bytes: &[u8],
    ) -> Result<String, UploadFailed> {
        let Some(sts) = sts else {
            return Err(UploadFailed {
                code: "Upload.NoStsToken".to_string(),
                message: format!("{kind} must go through OSS, but GetVerifyToken gave no StsToken"),
            });
        };
        let content_type = materials::content_type(bytes);
        let extension = if content_type == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let name = format!("{:016x}.{extension}", rand::random::<u64>());
        let mut retries = 0;
        loop {
            let error = match self
                .client
                .put_object(sts, &name, bytes.to_vec(), content_type)
            {
                Ok(address) => return Ok(address),
                Err(error) => error,
            };
            let passing = match &error {
                CallError::NotSent { .. } | CallError::Unanswered { .. } => true,
                CallError::Api { status, .. } | CallError::Undecodable { status, .. } => {
                    *status >= 500 || *status == 429
                }
            };
            if !passing || !self.backoff.allows(retries) || self.stopping() {
                return Err(UploadFailed {
                    code: error
                        .code()
                        .map_or_else(|| transport_code(&error), str::to_string),
                    message: format!("uploading {kind} to OSS failed: {error}"),
                });
            }
            let delay = self.backoff.delay(retries, rand::random::<f64>());
            tracing::warn!(%kind, %error, retry = retries + 1, "retrying the upload");
            std::thread::sleep(delay);
            retries += 1;
        }
    }

    /// Asks GetStatus about a submission that may have landed, and acts on the answer.
    fn settle(&self, job: &Job) -> Result<Settled, Failure> {
        let biz = &self.pipeline.service.biz;
        match self.call(Action::GetStatus, || {
            Ok(self.client.get_status(biz, &job.ticket_id))
        }) {
            Ok(reply) if reply.data.verdict() == Some(Verdict::NotSubmitted) => {
                tracing::info!("GetStatus says the submission never landed; it may be sent again");
                self.ledger.record_not_landed(&job.key)?;
                Ok(Settled::NotLanded)
            }
            Ok(reply) => self
                .on_status(job, reply.data, &reply.request_id)
                .map(|()| Settled::Handled),
            Err(Failure::Call(error, decision)) => {
                // The row stays marked as possibly submitted, so the next run settles it.
                let message =
                    format!("the submission may have landed, but GetStatus failed: {error}");
                tracing::error!(%message, ?decision, "row left unsettled");
                self.ledger.record_unsettled(&job.key, &message)?;
                self.progress.finish_row(Outcome::Pending);
                Ok(Settled::Handled)
            }
            Err(ledger) => Err(ledger),
        }
    }

    /// Records a status: a verdict finishes the row, 0 puts it in the review queue.
    fn on_status(&self, job: &Job, status: VerifyStatus, request_id: &str) -> Result<(), Failure> {
        match status.verdict() {
            Some(Verdict::InReview) => {
                self.ledger.record_review(&job.key, request_id)?;
                let deadline = Instant::now() + self.pipeline.polling.timeout;
                self.reviews.push(Waiting {
                    due: Instant::now() + self.pipeline.polling.interval,
                    deadline,
                    item: job.clone(),
                });
                Ok(())
            }
            Some(Verdict::Passed | Verdict::Failed) => {
                let outcome = if status.status_code == 1 {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                };
                let done = Finished {
                    status_code: Some(status.status_code),
                    similarity_score: status.similarity_score,
                    authority_comparison_score: status.authority_comparison_score,
                    audit_conclusions: status.audit_conclusions.filter(|a| !a.is_empty()),
                    request_id: Some(request_id.to_string()),
                    ..Finished::new(outcome)
                };
                Ok(self.finish(&job.key, done)?)
            }
            Some(Verdict::NotSubmitted) | None => {
                let message = format!("unexpected StatusCode {}", status.status_code);
                Ok(self.finish(
                    &job.key,
                    Finished::with_message(Outcome::Error, None, message),
                )?)
            }
        }
    }

    /// Polls a row in review once.
    fn poll(&self, waiting: Waiting<Job>) {
        let job = waiting.item.clone();
        let span = tracing::debug_span!("poll", row = job.number, ticket = %job.ticket_id);
        let _entered = span.enter();
        let biz = &self.pipeline.service.biz;
        let result = match self.call(Action::GetStatus, || {
            Ok(self.client.get_status(biz, &job.ticket_id))
        }) {
            Ok(reply) if reply.data.verdict() == Some(Verdict::InReview) => {
                self.still_in_review(waiting)
            }
            Ok(reply) if reply.data.verdict() == Some(Verdict::NotSubmitted) => {
                tracing::warn!("a submission in review is no longer known; sending it again");
                let job = Job {
                    resume: Resume::Fresh,
                    ..job
                };
                self.ledger
                    .record_not_landed(&job.key)
                    .map_err(Failure::from)
                    .and_then(|()| self.verify(job))
            }
            Ok(reply) => self.on_status(&job, reply.data, &reply.request_id),
            Err(Failure::Call(error, _)) => {
                tracing::warn!(%error, "GetStatus failed; polling again later");
                self.still_in_review(waiting)
            }
            Err(ledger) => Err(ledger),
        };
        if let Err(Failure::Ledger(error)) = result {
            self.stop(Halt::Ledger(error.to_string()));
        }
    }

    fn still_in_review(&self, mut waiting: Waiting<Job>) -> Result<(), Failure> {
        let now = Instant::now();
        if now >= waiting.deadline || self.stopping() {
            let message = "still in review when polling stopped; the next run polls again";
            self.ledger.record_unsettled(&waiting.item.key, message)?;
            self.progress.finish_row(Outcome::Pending);
            return Ok(());
        }
        waiting.due = now + self.pipeline.polling.interval;
        self.reviews.push(waiting);
        Ok(())
    }

    /// Finishes a row with the error a call ended in.
    fn give_up(&self, job: &Job, error: &CallError, decision: &Decision) -> Result<(), Failure> {
        if let Decision::Stop { reason } = decision {
            self.stop(Halt::Auth(reason.clone()));
            return Ok(());
        }
        // A name that does not match the ID number is a verdict on the person, not an error.
        let outcome = if error.code() == Some("Error.RealNameCheckFail") {
            Outcome::Failed
        } else {
            Outcome::Error
        };
        let done = Finished {
            error_code: Some(
                error
                    .code()
                    .map_or_else(|| transport_code(error), str::to_string),
            ),
            error_message: Some(error.to_string()),
            request_id: error.request_id().map(str::to_string),
            ..Finished::new(outcome)
        };
        let code = done.error_code.as_deref().unwrap_or("");
        if outcome == Outcome::Failed {
            tracing::info!(row = job.number, code, "row failed the real-name check");
        } else {
            tracing::error!(row = job.number, code, "row given up");
        }
        Ok(self.finish(&job.key, done)?)
    }

    fn finish(&self, key: &str, done: Finished) -> Result<(), LedgerError> {
        self.ledger.record_done(key, &done)?;
        self.progress.finish_row(done.outcome);
        if done.outcome != Outcome::Skipped {
            let failed = done.error_code.as_deref().is_some_and(is_infrastructure);
            if let Some(reason) = self.breaker.record(failed) {
                self.stop(Halt::Breaker(reason));
            }
        }
        Ok(())
    }

    /// Calls `action` under its quota, retrying what the policy says to retry.
    fn call<T>(
        &self,
        action: Action,
        mut attempt: impl FnMut() -> Result<Result<Reply<T>, CallError>, Failure>,
    ) -> Result<Reply<T>, Failure> {
        let metrics = &self.options.metrics;
        let mut retries = 0;
        loop {
            let waiting = Instant::now();
            self.limiter.acquire(action);
            metrics.add_limiter_wait(waiting.elapsed());
            let started = Instant::now();
            let result = attempt()?;
            let elapsed = started.elapsed();
            CALL_TIME.set(CALL_TIME.get() + elapsed);
            metrics.call(action, elapsed);
            let error = match result {
                Ok(reply) => {
                    self.limiter.succeeded(action);
                    tracing::debug!(%action, latency_ms = reply.latency.as_millis() as u64, request_id = %reply.request_id, "call done");
                    return Ok(reply);
                }
                Err(error) => error,
            };
            let decision = classify(&error);
            metrics.error(action);
            let Decision::Retry {
                reason,
                at_least,
                throttled,
            } = &decision
            else {
                return Err(Failure::Call(error, decision));
            };
            if *throttled {
                self.limiter.throttled(action);
                metrics.throttled(action);
            }
            if !self.backoff.allows(retries) || self.stopping() {
                return Err(Failure::Call(error, decision));
            }
            let delay = self
                .backoff
                .delay(retries, rand::random::<f64>())
                .max(at_least.unwrap_or_default());
            metrics.retry(action);
            if *throttled {
                metrics.add_throttled(delay);
            }
            tracing::warn!(%action, %reason, retry = retries + 1, delay_ms = delay.as_millis() as u64, "retrying");
            std::thread::sleep(delay);
            retries += 1;
        }
    }
}

thread_local! {
    /// Time the current worker's row has spent in calls, for sizing the gate.
    static CALL_TIME: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// A VerifyToken, with the OSS credentials that came with it.
struct Grant {
    token: String,
    sts: Option<StsToken>,
}

/// An image that could not be uploaded to OSS.
struct UploadFailed {
    code: String,
    message: String,
}

/// Whether `entry` is a row that was skipped before anything was sent for it.
fn never_sent(entry: &Entry) -> bool {
    entry.state == Some(State::Done)
        && entry.outcome == Some(Outcome::Skipped)
        && entry.attempts == 0
        && !entry.key.starts_with("#row-")
}

/// What to do after one submission round.
enum Next {
    /// The row has an outcome or waits in review.
    Done,
    /// Submit again, under a new VerifyToken: the last one expired, or the submission
    /// never landed.
    Again,
}

/// The key of an input row, empty when it has none or cannot be read.
pub fn row_key(row: &RowResult, key_column: &str) -> String {
    match row {
        Ok(row) => row.get(key_column).unwrap_or("").trim().to_string(),
        Err(_) => String::new(),
    }
}

/// The input position of a row, read or not.
pub fn row_number(row: &RowResult) -> u64 {
    match row {
        Ok(row) => row.number,
        Err(error) => error.number,
    }
}

/// A short code for a failure that has no API code.
fn transport_code(error: &CallError) -> String {
    match error {
        CallError::NotSent { .. } => "Transport.NotSent",
        CallError::Unanswered { .. } => "Transport.NoAnswer",
        CallError::Undecodable { .. } => "Response.Undecodable",
        CallError::Api { .. } => "Api",
    }
    .to_string()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
