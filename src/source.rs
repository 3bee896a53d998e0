//! Streams the rows of the input table: CSV or TSV through the csv crate, Parquet through
//! polars in slices, so that memory stays bounded however long the input is.
//!
//! A row that cannot be read (a CSV record with the wrong number of fields, bytes that are
//! not UTF-8) does not end the stream: it comes out as a [`RowError`] naming its position,
//! and the engine records it as a skipped row.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::spec::{SourceFormat, SourceSpec};

/// The input's column names.
#[derive(Debug, Clone)]
pub struct Header {
    names: Vec<String>,
}

impl Header {
    /// The column names in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of column `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// One input row.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based position among the data rows.
    pub number: u64,
    /// The cells, in header order.
    pub cells: Vec<String>,
    /// The header the cells follow.
    pub header: Arc<Header>,
}

impl Row {
    /// The cell of column `name`, if the column exists.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.header
            .position(name)
            .and_then(|i| self.cells.get(i))
            .map(String::as_str)
    }
}

/// A row that could not be read.
#[derive(Debug, Clone)]
pub struct RowError {
    /// 1-based position among the data rows.
    pub number: u64,
    /// What is wrong, with the file line where the reader knows it.
    pub message: String,
}

/// The input as a whole is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file cannot be opened.
    #[error("cannot open the input {path}: {source}")]
    Open {
        /// The input file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header cannot be read.
    #[error("cannot read the header of {path}: {reason}")]
    Header {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading Parquet failed.
    #[error("cannot read {path}: {reason}")]
    Parquet {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What the stream yields: a row, or a row that could not be read.
pub type RowResult = Result<Row, RowError>;

/// An open input: its header and a stream of rows.
pub struct Rows {
    /// The column names.
    pub header: Arc<Header>,
    /// The rows, in file order.
    pub iter: Box<dyn Iterator<Item = Result<RowResult, SourceError>> + Send>,
}

/// Opens the input described by `spec`.
pub fn open(spec: &SourceSpec) -> Result<Rows, SourceError> {
    match spec.format {
        SourceFormat::Csv => open_delimited(&spec.path, b','),
        SourceFormat::Tsv => open_delimited(&spec.path, b'\t'),
        SourceFormat::Parquet => parquet::open(&spec.path),
    }
}

fn open_delimited(path: &Path, delimiter: u8) -> Result<Rows, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .buffer_capacity(256 * 1024)
        .from_reader(file);
    let names = reader
        .headers()
        .map_err(|e| SourceError::Header {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let header = Arc::new(Header { names });
    let shared = Arc::clone(&header);
    let mut number = 0;
    let iter = reader.into_byte_records().map(move |record| {
        number += 1;
        Ok(csv_row(number, record, &shared))
    });
    Ok(Rows {
        header,
        iter: Box::new(iter),
    })
}

fn csv_row(number: u64, record: csv::Result<csv::ByteRecord>, header: &Arc<Header>) -> RowResult {
    let record = record.map_err(|e| RowError {
        number,
        message: e.to_string(),
    })?;
    let line = record.position().map_or(0, csv::Position::line);
    let cells = record
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            String::from_utf8(cell.to_vec()).map_err(|_| RowError {
                number,
                message: format!(
                    "line {line}, column {}: the cell is not valid UTF-8",
                    header.names.get(i).map_or("?", String::as_str)
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Row {
        number,
        cells,
        header: Arc::clone(header),
    })
}

mod parquet {
    //! Parquet in slices of rows: each slice is read, turned into text cells and handed
    //! out before the next is read.

    use super::*;
    use polars::prelude::*;

    const SLICE_ROWS: usize = 8192;

    pub(super) fn open(path: &Path) -> Result<Rows, SourceError> {
        let fail = |e: PolarsError| SourceError::Parquet {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = ParquetReader::new(file);
        let total = reader.num_rows().map_err(fail)?;
        let schema = reader.schema().map_err(fail)?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        let header = Arc::new(Header { names });
        let slices = Slices {
            path: path.to_path_buf(),
            header: Arc::clone(&header),
            total,
            offset: 0,
            pending: Vec::new().into_iter(),
        };
        Ok(Rows {
            header,
            iter: Box::new(slices),
        })
    }

    struct Slices {
        path: PathBuf,
        header: Arc<Header>,
        total: usize,
        offset: usize,
        pending: std::vec::IntoIter<RowResult>,
    }

    impl Iterator for Slices {
        type Item = Result<RowResult, SourceError>;

        fn next(&mut self) -> Option<Self::Item> {
            if let Some(row) = self.pending.next() {
                return Some(Ok(row));
            }
            if self.offset >= self.total {
                return None;
            }
            match self.read_slice() {
                Ok(rows) => {
                    self.pending = rows.into_iter();
                    self.pending.next().map(Ok)
                }
                Err(e) => {
                    self.offset = self.total;
                    Some(Err(e))
                }
            }
        }
    }

    impl Slices {
        fn read_slice(&mut self) -> Result<Vec<RowResult>, SourceError> {
            let fail = |e: PolarsError| SourceError::Parquet {
                path: self.path.clone(),
                reason: e.to_string(),
            };
            let file = File::open(&self.path).map_err(|source| SourceError::Open {
                path: self.path.clone(),
                source,
            })?;
            let len = SLICE_ROWS.min(self.total - self.offset);
            let frame = ParquetReader::new(file)
                .with_slice(Some((self.offset, len)))
                .finish()
                .map_err(fail)?;
            let columns = frame
                .columns()
                .iter()
                .map(|c| c.cast(&DataType::String).map_err(fail))
                .collect::<Result<Vec<_>, _>>()?;
            let texts = columns
                .iter()
                .map(|c| c.str().map_err(fail))
                .collect::<Result<Vec<_>, _>>()?;
            let first = self.offset as u64;
            self.offset += len;
            Ok((0..frame.height())
                .map(|i| {
                    let cells = texts
                        .iter()
                        .map(|column| column.get(i).unwrap_or("").to_string())
                        .collect();
                    Ok(Row {
                        number: first + i as u64 + 1,
                        cells,
                        header: Arc::clone(&self.header),
                    })
                })
                .collect())
        }
    }
}
