//! The durable record of a run: one SQLite row per input row, written before the run moves
//! on, so that a run killed at any moment loses nothing it paid for and the next run
//! resumes where it stopped.
//!
//! A row goes through these states:
//!
//! - `new`: read, nothing sent yet;
//! - `token`: a VerifyToken was obtained;
//! - `sending`: a SubmitMaterials is about to leave. Written *before* the request, so a
//!   crash after it leaves the row marked as possibly submitted, to be settled with
//!   GetStatus rather than sent again;
//! - `review`: the service answered StatusCode 0;
//! - `done`: the row has its outcome.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: every committed write survives
//! the process being killed; a power cut may lose the last few.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Read, nothing sent.
    New,
    /// A VerifyToken was obtained.
    Token,
    /// A SubmitMaterials may have reached the service.
    Sending,
    /// In review at the service.
    Review,
    /// Finished.
    Done,
}

impl State {
    fn parse(text: &str) -> State {
        match text {
            "token" => State::Token,
            "sending" => State::Sending,
            "review" => State::Review,
            "done" => State::Done,
            _ => State::New,
        }
    }
}

/// How a row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// StatusCode 1.
    Passed,
    /// StatusCode 2, or a name that does not match the ID number.
    Failed,
    /// Still in review when polling stopped.
    Pending,
    /// Could not be verified: an error the report names.
    Error,
    /// Not submitted: a material was missing or the row was unreadable.
    Skipped,
}

impl Outcome {
    /// The report's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    /// Reads the report's spelling.
    pub fn parse(text: &str) -> Option<Outcome> {
        Some(match text {
            "passed" => Outcome::Passed,
            "failed" => Outcome::Failed,
            "pending" => Outcome::Pending,
            "error" => Outcome::Error,
            "skipped" => Outcome::Skipped,
            _ => return None,
        })
    }

    /// Whether the row has a verdict (passed or failed).
    pub fn is_verdict(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Failed)
    }
}

/// Everything the ledger knows about a row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// 1-based input position.
    pub row: u64,
    /// The row key.
    pub key: String,
    /// The ticket id.
    pub ticket_id: String,
    /// Where it stands.
    pub state: Option<State>,
    /// The last VerifyToken.
    pub verify_token: Option<String>,
    /// When that token expires, Unix seconds.
    pub token_expires_at: Option<i64>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// The last StatusCode.
    pub status_code: Option<i32>,
    /// SimilarityScore.
    pub similarity_score: Option<f64>,
    /// AuthorityComparisonScore.
    pub authority_comparison_score: Option<f64>,
    /// AuditConclusions.
    pub audit_conclusions: Option<String>,
    /// The last error code.
    pub error_code: Option<String>,
    /// The last error message.
    pub error_message: Option<String>,
    /// The RequestId of the call that decided the outcome.
    pub request_id: Option<String>,
    /// SubmitMaterials attempts.
    pub attempts: u32,
    /// When the first submission left, RFC 3339.
    pub submitted_at: Option<String>,
    /// When the outcome was settled, RFC 3339.
    pub completed_at: Option<String>,
    /// Time from the first submission to the verdict.
    pub latency_ms: Option<i64>,
    /// 1 for the first verification of the row, 2 and up for each re-verification.
    pub generation: u32,
    /// What was done to the row's images to make them fit.
    pub images: Option<String>,
}

/// A ledger that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger {path}: {cause}")]
    Sqlite {
        /// The ledger file.
        path: PathBuf,
        /// SQLite's error, shown in the message rather than as a separate cause.
        cause: rusqlite::Error,
    },
    /// The ledger belongs to another spec.
    #[error(
        "ledger {path} belongs to pipeline {found:?}, not {expected:?}; give this run its own ledger path"
    )]
    Foreign {
        /// The ledger file.
        path: PathBuf,
        /// The name recorded in it.
        found: String,
        /// This run's pipeline name.
        expected: String,
    },
    /// The folder cannot be created.
    #[error("cannot create the folder of ledger {path}: {cause}")]
    Folder {
        /// The ledger file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

/// The ledger of one pipeline. Shared by the workers; each write is one short transaction.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    row INTEGER NOT NULL,
    ticket_id TEXT NOT NULL,
    state TEXT NOT NULL,
    verify_token TEXT,
    token_expires_at INTEGER,
    outcome TEXT,
    status_code INTEGER,
    similarity_score REAL,
    authority_comparison_score REAL,
    audit_conclusions TEXT,
    error_code TEXT,
    error_message TEXT,
    request_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT,
    completed_at TEXT,
    latency_ms INTEGER,
    generation INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    images TEXT
);
CREATE INDEX IF NOT EXISTS rows_by_row ON rows(row);
CREATE INDEX IF NOT EXISTS rows_by_ticket ON rows(ticket_id);
";

const COLUMNS: &str = "row, key, ticket_id, state, verify_token, token_expires_at, outcome, status_code, \
    similarity_score, authority_comparison_score, audit_conclusions, error_code, error_message, \
    request_id, attempts, submitted_at, completed_at, latency_ms, generation, images";

impl Ledger {
    /// Opens or creates the ledger of pipeline `name` at `path`.
    pub fn open(path: &Path, name: &str) -> Result<Ledger, LedgerError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|cause| LedgerError::Folder {
                path: path.to_path_buf(),
                cause,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        ledger.setup(name)?;
        Ok(ledger)
    }

    /// Opens an existing ledger without checking whose it is, for the ledger tools.
    pub fn open_existing(path: &Path) -> Result<Ledger, LedgerError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(path, e))?;
        add_missing_columns(&conn).map_err(|e| sqlite(path, e))?;
        Ok(Ledger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn setup(&self, name: &str) -> Result<(), LedgerError> {
        let conn = self.lock();
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sqlite(&self.path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| sqlite(&self.path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| sqlite(&self.path, e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| sqlite(&self.path, e))?;
        add_missing_columns(&conn).map_err(|e| sqlite(&self.path, e))?;
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE name = 'pipeline'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sqlite(&self.path, e))?;
        match found {
            Some(found) if found != name => Err(LedgerError::Foreign {
                path: self.path.clone(),
                found,
                expected: name.to_string(),
            }),
            Some(_) => Ok(()),
            None => conn
                .execute(
                    "INSERT INTO meta (name, value) VALUES ('pipeline', ?1)",
                    [name],
                )
                .map(drop)
                .map_err(|e| sqlite(&self.path, e)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A worker that panicked mid-write leaves SQLite consistent (the transaction rolls
        // back), so a poisoned lock is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A value from the meta table.
    pub fn meta(&self, name: &str) -> Result<Option<String>, LedgerError> {
        self.lock()
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sqlite(&self.path, e))
    }

    /// Sets a value in the meta table.
    pub fn set_meta(&self, name: &str, value: &str) -> Result<(), LedgerError> {
        self.lock()
            .execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = ?2",
                params![name, value],
            )
            .map(drop)
            .map_err(|e| sqlite(&self.path, e))
    }

    /// The row with `key`.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM rows WHERE key = ?1");
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(&sql)
            .map_err(|e| sqlite(&self.path, e))?;
        statement
            .query_row([key], entry_from_row)
            .optional()
            .map_err(|e| sqlite(&self.path, e))
    }

    /// Records a row as read, unless it is known already.
    pub fn insert_new(&self, row: u64, key: &str, ticket_id: &str) -> Result<(), LedgerError> {
        self.lock()
            .execute(
                "INSERT INTO rows (key, row, ticket_id, state, updated_at) VALUES (?1, ?2, ?3, 'new', ?4)
                 ON CONFLICT(key) DO NOTHING",
                params![key, row as i64, ticket_id, now()],
            )
            .map(drop)
            .map_err(|e| sqlite(&self.path, e))
    }

    /// Starts a row over under a new ticket, for re-verification: the previous outcome
    /// is cleared and the generation counted up.
    pub fn restart(&self, key: &str, ticket_id: &str, generation: u32) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET ticket_id = ?2, generation = ?3, state = 'new', verify_token = NULL,
                token_expires_at = NULL, outcome = NULL, status_code = NULL, similarity_score = NULL,
                authority_comparison_score = NULL, audit_conclusions = NULL, error_code = NULL,
                error_message = NULL, request_id = NULL, attempts = 0, submitted_at = NULL,
                completed_at = NULL, latency_ms = NULL, images = NULL, updated_at = ?4
             WHERE key = ?1",
            params![key, ticket_id, i64::from(generation), now()],
        )
    }

    /// The key and input row of the row holding `ticket_id`, if any.
    pub fn holder_of_ticket(&self, ticket_id: &str) -> Result<Option<(String, u64)>, LedgerError> {
        self.lock()
            .query_row(
                "SELECT key, row FROM rows WHERE ticket_id = ?1 LIMIT 1",
                [ticket_id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(|e| sqlite(&self.path, e))
    }

    /// Records what was done to a row's images to make them fit.
    pub fn record_images(&self, key: &str, notes: &str) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET images = ?2, updated_at = ?3 WHERE key = ?1",
            params![key, notes, now()],
        )
    }

    /// Records a new VerifyToken for a row.
    pub fn record_token(&self, key: &str, token: &str, expires_at: i64) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET state = 'token', verify_token = ?2, token_expires_at = ?3, updated_at = ?4 WHERE key = ?1",
            params![key, token, expires_at, now()],
        )
    }

    /// Records that a SubmitMaterials is about to leave. Must be committed before sending.
    pub fn record_sending(&self, key: &str) -> Result<(), LedgerError> {
        let at = now();
        self.update(
            "UPDATE rows SET state = 'sending', attempts = attempts + 1,
                submitted_at = COALESCE(submitted_at, ?2), updated_at = ?2 WHERE key = ?1",
            params![key, at],
        )
    }

    /// Records that the service holds the submission in review.
    pub fn record_review(&self, key: &str, request_id: &str) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET state = 'review', status_code = 0, request_id = ?2, updated_at = ?3 WHERE key = ?1",
            params![key, request_id, now()],
        )
    }

    /// Records that a submission never landed (GetStatus said -1): the row may be sent again.
    pub fn record_not_landed(&self, key: &str) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET state = 'token', updated_at = ?2 WHERE key = ?1",
            params![key, now()],
        )
    }

    /// Records a row that ends this run without a verdict but must be settled by the next
    /// one (in review, or possibly submitted): the outcome says pending, the state stays.
    pub fn record_unsettled(&self, key: &str, message: &str) -> Result<(), LedgerError> {
        self.update(
            "UPDATE rows SET outcome = 'pending', error_message = ?2, updated_at = ?3 WHERE key = ?1",
            params![key, message, now()],
        )
    }

    /// Records a row's outcome.
    pub fn record_done(&self, key: &str, done: &Finished) -> Result<(), LedgerError> {
        let at = now();
        self.update(
            "UPDATE rows SET state = 'done', outcome = ?2, status_code = ?3, similarity_score = ?4,
                authority_comparison_score = ?5, audit_conclusions = ?6, error_code = ?7,
                error_message = ?8, request_id = COALESCE(?9, request_id), completed_at = ?10,
                latency_ms = CAST((julianday(?10) - julianday(submitted_at)) * 86400000 AS INTEGER),
                updated_at = ?10
             WHERE key = ?1",
            params![
                key,
                done.outcome.as_str(),
                done.status_code,
                done.similarity_score,
                done.authority_comparison_score,
                done.audit_conclusions,
                done.error_code,
                done.error_message,
                done.request_id,
                at
            ],
        )
    }

    fn update(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), LedgerError> {
        self.lock()
            .execute(sql, params)
            .map(drop)
            .map_err(|e| sqlite(&self.path, e))
    }

    /// When a row was last written, RFC 3339.
    pub fn last_update(&self) -> Result<Option<String>, LedgerError> {
        self.lock()
            .query_row("SELECT MAX(updated_at) FROM rows", [], |r| r.get(0))
            .map_err(|e| sqlite(&self.path, e))
    }

    /// Calls `each` with the key and input position of every row, without holding them
    /// all in memory.
    pub fn each_key(&self, mut each: impl FnMut(&str, u64)) -> Result<(), LedgerError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT key, row FROM rows")
            .map_err(|e| sqlite(&self.path, e))?;
        let mut rows = statement.query([]).map_err(|e| sqlite(&self.path, e))?;
        while let Some(row) = rows.next().map_err(|e| sqlite(&self.path, e))? {
            let key: String = row.get(0).map_err(|e| sqlite(&self.path, e))?;
            let number: i64 = row.get(1).map_err(|e| sqlite(&self.path, e))?;
            each(&key, number as u64);
        }
        Ok(())
    }

    /// Every row in input order, for reports.
    pub fn entries(&self) -> Result<Vec<Entry>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM rows ORDER BY row");
        let conn = self.lock();
        let mut statement = conn.prepare(&sql).map_err(|e| sqlite(&self.path, e))?;
        let rows = statement
            .query_map([], entry_from_row)
            .map_err(|e| sqlite(&self.path, e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlite(&self.path, e))
    }

    /// How many rows there are in each state and outcome.
    pub fn counts(&self) -> Result<Vec<(String, Option<String>, u64)>, LedgerError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT state, outcome, COUNT(*) FROM rows GROUP BY state, outcome")
            .map_err(|e| sqlite(&self.path, e))?;
        let rows = statement
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(|e| sqlite(&self.path, e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlite(&self.path, e))
    }
}

/// The outcome of a row, as recorded.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub outcome: Outcome,
    /// StatusCode, when the service gave one.
    pub status_code: Option<i32>,
    /// SimilarityScore.
    pub similarity_score: Option<f64>,
    /// AuthorityComparisonScore.
    pub authority_comparison_score: Option<f64>,
    /// AuditConclusions.
    pub audit_conclusions: Option<String>,
    /// The error code.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// The deciding call's RequestId.
    pub request_id: Option<String>,
}

impl Finished {
    /// An outcome with only a message, such as a skipped row.
    pub fn with_message(
        outcome: Outcome,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Finished {
        Finished {
            outcome,
            error_code: code.map(str::to_string),
            error_message: Some(message.into()),
            ..Finished::new(outcome)
        }
    }

    /// An outcome with nothing else known yet.
    pub fn new(outcome: Outcome) -> Finished {
        Finished {
            outcome,
            status_code: None,
            similarity_score: None,
            authority_comparison_score: None,
            audit_conclusions: None,
            error_code: None,
            error_message: None,
            request_id: None,
        }
    }
}

/// Brings a ledger written by an earlier version up to the current columns.
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info('rows')")?;
    let names: Vec<String> = statement
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if !names.iter().any(|n| n == "images") {
        conn.execute_batch("ALTER TABLE rows ADD COLUMN images TEXT")?;
    }
    Ok(())
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        row: r.get::<_, i64>(0)? as u64,
        key: r.get(1)?,
        ticket_id: r.get(2)?,
        state: Some(State::parse(&r.get::<_, String>(3)?)),
        verify_token: r.get(4)?,
        token_expires_at: r.get(5)?,
        outcome: r
            .get::<_, Option<String>>(6)?
            .as_deref()
            .and_then(Outcome::parse),
        status_code: r.get(7)?,
        similarity_score: r.get(8)?,
        authority_comparison_score: r.get(9)?,
        audit_conclusions: r.get(10)?,
        error_code: r.get(11)?,
        error_message: r.get(12)?,
        request_id: r.get(13)?,
        attempts: r.get::<_, i64>(14)? as u32,
        submitted_at: r.get(15)?,
        completed_at: r.get(16)?,
        latency_ms: r.get(17)?,
        generation: r.get::<_, i64>(18)? as u32,
        images: r.get(19)?,
    })
}

fn sqlite(path: &Path, cause: rusqlite::Error) -> LedgerError {
    LedgerError::Sqlite {
        path: path.to_path_buf(),
        cause,
    }
}

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_walks_through_its_states_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ledger.sqlite");
        {
            let ledger = Ledger::open(&path, "p").unwrap();
            ledger.insert_new(1, "k1", "t-k1").unwrap();
            ledger.insert_new(1, "k1", "ignored").unwrap();
            ledger.record_token("k1", "tok", 99).unwrap();
            ledger.record_sending("k1").unwrap();
            assert_eq!(
                ledger.get("k1").unwrap().unwrap().state,
                Some(State::Sending)
            );
        }
        let ledger = Ledger::open(&path, "p").unwrap();
        let entry = ledger.get("k1").unwrap().unwrap();
        assert_eq!((entry.ticket_id.as_str(), entry.attempts), ("t-k1", 1));
        assert_eq!(entry.verify_token.as_deref(), Some("tok"));

        let done = Finished {
            status_code: Some(1),
            authority_comparison_score: Some(97.5),
            ..Finished::new(Outcome::Passed)
        };
        ledger.record_done("k1", &done).unwrap();
        let entry = ledger.get("k1").unwrap().unwrap();
        assert_eq!(entry.outcome, Some(Outcome::Passed));
        assert_eq!(entry.state, Some(State::Done));
        assert!(entry.latency_ms.is_some_and(|ms| ms >= 0));
    }

    #[test]
    fn a_ledger_refuses_another_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        Ledger::open(&path, "one").unwrap();
        assert!(matches!(
            Ledger::open(&path, "two"),
            Err(LedgerError::Foreign { .. })
        ));
    }
}
