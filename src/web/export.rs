//! Exports of exactly what a view shows: CSV, JSON or Parquet, streamed in chunks (a million
//! events never sit in memory), the file opened for each chunk only, so syncs commit between.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;

use super::auth::Signed;
use super::pages::query;
use super::{AppState, PageError};
use crate::store::{Cursor, LogFilter, StoreError, Warehouse};

/// Events read per visit to the file.
const CHUNK: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    Parquet,
}

impl Format {
    fn parse(s: Option<&str>) -> Option<Format> {
        match s? {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

type Chunks = mpsc::Sender<Result<Bytes, StoreError>>;

/// Sends what the Parquet writer writes, in pieces of about 1 MiB.
struct ChannelWriter {
    tx: Chunks,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(bytes)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was cancelled"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn encode(e: impl std::fmt::Display) -> StoreError {
    StoreError::LakeEncode { table: "helpscout_log".into(), reason: e.to_string() }
}

/// Writes the view chunk by chunk into `tx`; stops quietly when the download is cancelled.
fn produce(path: std::path::PathBuf, mut filter: LogFilter, format: Format, tx: Chunks) -> Result<(), StoreError> {
    let gone = |_| StoreError::LakeIo { path: "the download".into(), reason: "cancelled".into() };
    let mut cursor: Option<Cursor> = None;
    let mut first = true;
    let mut parquet: Option<ArrowWriter<ChannelWriter>> = None;
    loop {
        filter.before = cursor;
        let reader = Warehouse::new(&path).read()?;
        let (n, next, bytes) = match format {
            Format::Parquet => {
                let (schema, batches, last) = reader.log_batches(&filter, CHUNK)?;
                drop(reader);
                let writer = match &mut parquet {
                    Some(w) => w,
                    None => {
                        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
                        let sink = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
                        parquet.insert(ArrowWriter::try_new(sink, schema, Some(props)).map_err(encode)?)
                    }
                };
                let n: usize = batches.iter().map(|b| b.num_rows()).sum();
                for b in &batches {
                    writer.write(b).map_err(encode)?;
                }
                writer.flush().map_err(encode)?;
                (n, last, Vec::new())
            }
            Format::Csv | Format::Json => {
                let rows = reader.log_rows(&filter, CHUNK)?;
                drop(reader);
                let mut out = Vec::new();
                if format == Format::Csv {
                    let mut w = csv::WriterBuilder::new().has_headers(first).from_writer(&mut out);
                    for r in &rows {
                        w.serialize(r).map_err(encode)?;
                    }
                    w.flush().map_err(encode)?;
                } else {
                    for (i, r) in rows.iter().enumerate() {
                        out.extend_from_slice(if first && i == 0 { b"[\n" } else { b",\n" });
                        serde_json::to_writer(&mut out, r).map_err(encode)?;
                    }
                    if first && rows.is_empty() {
                        out.extend_from_slice(b"[");
                    }
                }
                (rows.len(), rows.last().map(|r| r.cursor()), out)
            }
        };
        if !bytes.is_empty() {
            tx.blocking_send(Ok(Bytes::from(bytes))).map_err(gone)?;
        }
        first = false;
        match next {
            Some(c) if n == CHUNK => cursor = Some(c),
            _ => break,
        }
    }
    match format {
        Format::Parquet => {
            if let Some(w) = parquet {
                let mut sink = w.into_inner().map_err(encode)?;
                sink.flush().map_err(encode)?;
            }
        }
        Format::Json => tx.blocking_send(Ok(Bytes::from_static(b"\n]\n"))).map_err(gone)?,
        Format::Csv => {}
    }
    Ok(())
}

pub(crate) async fn export(State(state): State<Arc<AppState>>, Signed(_viewer): Signed, RawQuery(raw): RawQuery) -> Result<Response, PageError> {
    let format_name = raw.as_deref().and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "format").map(|(_, v)| v.into_owned()));
    let format = Format::parse(format_name.as_deref()).ok_or_else(|| PageError::BadRequest("Say which format to export: format=csv, json or parquet.".into()))?;
    let mut filter = query(raw)?.filter(chrono::Utc::now());
    filter.before = None;
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, StoreError>>(4);
    let path = state.outputs.duckdb.clone();
    let errors = tx.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(path, filter, format, tx) {
            let _ = errors.blocking_send(Err(e));
        }
    });
    // The first chunk decides between a download and an error page.
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(PageError::Store(e)),
        None => Bytes::new(),
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map_err(|e| std::io::Error::other(e.to_string())), rx))
    });
    let body = Body::from_stream(futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest));
    let name = match format {
        Format::Csv => "helpscout-log.csv",
        Format::Json => "helpscout-log.json",
        Format::Parquet => "helpscout-log.parquet",
    };
    Ok(([(header::CONTENT_TYPE, format.content_type().to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))], body).into_response())
}
