//! MOSN-style access logs: `listeners[].access_logs[]`, one line per
//! request in a `%variable%` format, written by a background thread that
//! never makes a request wait.
//!
//! - `config`: the `{"log_path", "log_format"}` entries, checked and
//!   parsed when the configuration is built ([`build`]).
//! - `format`: the compiled format and its rendering ([`Format`],
//!   [`Record`]).
//! - `writer`: one file, its bounded queue and writer thread.
//! - [`AccessLogs`]: the gateway's open files by path: opened on start and
//!   reload, closed when no listener names them any more, reopened on
//!   SIGUSR1, enabled and disabled by path (MOSN's `enable_log` /
//!   `disable_log`), and the `access_log_dropped_total` counter.
//!
//! The framed proxy calls [`ListenerAccessLogs::log`] once per request,
//! at the end of `ProxyCore::serve`; the HTTP proxy builds its own
//! [`Record`] when the response body ends or is dropped
//! (`proxy/http/log.rs`) and calls [`ListenerAccessLogs::write`]. A
//! listener without access logs costs one branch on either path.

mod config;
mod format;
mod writer;

pub use config::{AccessLogConfig, build};
pub use format::{DEFAULT_FORMAT, Format, LoggedHeaders, Record};
pub use writer::WriterSettings;

use crate::config::GatewayConfig;
use crate::proxy::{ProxyError, RequestCx};
use meshgate_cluster::pool::PoolError;
use meshgate_codecs::{Frame, FrameCodec};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::time::Instant;
use writer::LogFile;

/// One configured access log of a listener: where, and in which format.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    format: Arc<Format>,
    /// Attached by [`AccessLogs::open_for`]; `None` in a configuration
    /// that was only validated.
    file: Option<Arc<LogFile>>,
}

/// A listener's access logs (`listeners[].access_logs[]`), in order.
/// Cloning is cheap (shared), so an HTTP response body can hold its
/// listener's logs until it ends.
#[derive(Debug, Clone, Default)]
pub struct ListenerAccessLogs {
    entries: Arc<Vec<Entry>>,
}

/// Timestamps taken during a request for the access log, only when its
/// listener has one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    /// The proxy began serving the request.
    pub proxied: Option<Instant>,
    /// The upstream's response arrived.
    pub answered: Option<Instant>,
}

thread_local! {
    /// The line being rendered; reused by every request of the thread.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl ListenerAccessLogs {
    /// True when the listener logs nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured paths, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.path.as_str())
    }

    /// The enabled logs with their files.
    fn live(&self) -> impl Iterator<Item = (&Entry, &Arc<LogFile>)> {
        self.entries
            .iter()
            .filter_map(|e| Some((e, e.file.as_ref()?)))
            .filter(|(_, file)| file.is_enabled())
    }

    /// True when an enabled log's format names a response header.
    pub fn reads_response_headers(&self) -> bool {
        self.live().any(|(e, _)| e.format.reads_response_headers())
    }

    /// Logs one finished request to every enabled log: `reply` is what is
    /// written back (`None` for oneway), `failure` why the gateway
    /// answered itself. Renders into a per-thread buffer and queues the
    /// line without waiting. Fills `reply`'s header view first when a
    /// format reads response headers.
    pub fn log(
        &self,
        codec: &dyn FrameCodec,
        cx: &RequestCx,
        reply: &mut Option<Frame>,
        failure: Option<&ProxyError>,
    ) {
        if self.live().next().is_none() {
            return;
        }
        if let Some(reply) = reply.as_mut()
            && self.reads_response_headers()
            && let Err(e) = codec.fill_headers(reply)
        {
            tracing::debug!(id = cx.request.request_id, error = %e, "response headers unreadable; logged as -");
        }
        let now = Instant::now();
        let duration = now.saturating_duration_since(cx.start);
        let wall = SystemTime::now();
        let reply = reply.as_ref();
        let record = Record {
            start: wall.checked_sub(duration).unwrap_or(wall),
            duration,
            request_received: cx
                .marks
                .proxied
                .map(|at| at.saturating_duration_since(cx.start)),
            response_received: cx
                .marks
                .answered
                .map(|at| at.saturating_duration_since(cx.start)),
            protocol: &cx.downstream.protocol,
            listener: &cx.downstream.listener,
            request_id: Some(cx.request.request_id),
            request_headers: LoggedHeaders::Frame(cx.request.headers()),
            response_headers: reply.map(|r| LoggedHeaders::Frame(r.headers())),
            // A local reply logs its reason's neutral code, as MOSN logs
            // the code it hijacked with (a codec's wire status may be
            // coarser: bolt has no "no route").
            response_code: match failure {
                Some(failure) => Some(failure.reply_status().neutral_code()),
                None => reply.and_then(|r| r.status).map(|s| s.neutral),
            },
            response_flag: failure.map(response_flag),
            bytes_received: cx.request.body().len() as u64,
            bytes_sent: reply.map_or(0, |r| r.body().len() as u64),
            downstream_local: cx.downstream.local,
            downstream_remote: cx.downstream.peer,
            upstream_host: cx.host.as_deref().map(|h| h.address_text()),
            upstream_cluster: cx.cluster.as_deref().map(|c| c.name()),
        };
        self.write(&record);
    }

    /// Renders `record` into every enabled log and queues the lines
    /// without waiting.
    pub fn write(&self, record: &Record<'_>) {
        LINE.with_borrow_mut(|line| {
            for (entry, file) in self.live() {
                line.clear();
                entry.format.render(record, line);
                file.submit(line.as_slice().to_vec());
            }
        });
    }
}

/// MOSN's response flag name for why the gateway answered a request
/// itself.
pub fn response_flag(failure: &ProxyError) -> &'static str {
    use meshgate_codecs::ReplyStatus;
    match failure {
        ProxyError::NoRoute => "NoRouteFound",
        ProxyError::NoCluster(_) | ProxyError::NoHealthyHost(_) => "NoHealthyUpstream",
        ProxyError::Pool(PoolError::Overflow { .. }) => "UpstreamOverflow",
        ProxyError::Pool(PoolError::UpstreamReset { .. }) => "UpstreamRemoteReset",
        ProxyError::Pool(PoolError::Closed { .. }) => "UpstreamConnectionTermination",
        ProxyError::Pool(e) if e.is_connect_failure() => "UpstreamConnectionFailure",
        ProxyError::Pool(_) => "UpstreamLocalReset",
        ProxyError::PerTryTimeout(_) | ProxyError::Timeout(_) => "UpstreamRequestTimeout",
        ProxyError::Local(reply) if reply.status == ReplyStatus::RateLimited => "RateLimited",
        ProxyError::Local(_) => "LocalReply",
    }
}

/// Why an access log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("access log {path:?} cannot be opened: {source}")]
pub struct OpenError {
    /// The configured path.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// `enable_log` / `disable_log` named a log that is not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no access log {name:?}; open access logs: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
pub struct UnknownLog {
    /// What was asked for.
    pub name: String,
    /// The paths that are open.
    pub known: Vec<String>,
}

/// One open access log, as the admin API and stats show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogStatus {
    /// The path as configured.
    pub path: String,
    /// False after `disable_log`.
    pub enabled: bool,
    /// Lines written to the file.
    pub written: u64,
    /// Lines dropped (queue full, write failure, log closed).
    pub dropped: u64,
}

/// The gateway's open access log files, one per distinct path (listeners
/// naming the same path share it, as in MOSN).
#[derive(Debug)]
pub struct AccessLogs {
    files: Mutex<BTreeMap<String, Arc<LogFile>>>,
    dropped_total: Arc<AtomicU64>,
    settings: WriterSettings,
}

impl Default for AccessLogs {
    fn default() -> AccessLogs {
        AccessLogs::new(WriterSettings::default())
    }
}

impl AccessLogs {
    /// No open logs; files opened later use `settings`.
    pub fn new(settings: WriterSettings) -> AccessLogs {
        AccessLogs {
            files: Mutex::new(BTreeMap::new()),
            dropped_total: Arc::default(),
            settings,
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<LogFile>>> {
        // The map stays consistent whatever panicked while holding it.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens every access log `config`'s listeners name (paths already
    /// open are shared, keeping their enabled state) and attaches the
    /// files to the listeners. On error, logs opened by this call stay
    /// open until the next [`AccessLogs::close_unused`].
    pub fn open_for(&self, config: &mut GatewayConfig) -> Result<(), OpenError> {
        let mut files = self.files();
        for listener in &mut config.listeners {
            for entry in Arc::make_mut(&mut listener.access_logs.entries) {
                let file = match files.get(&entry.path) {
                    Some(file) => Arc::clone(file),
                    None => {
                        let file = LogFile::open(
                            &entry.path,
                            self.settings,
                            Arc::clone(&self.dropped_total),
                        )
                        .map_err(|source| OpenError {
                            path: entry.path.clone(),
                            source,
                        })?;
                        tracing::info!(path = %entry.path, "access log opened");
                        files.insert(entry.path.clone(), Arc::clone(&file));
                        file
                    }
                };
                entry.file = Some(file);
            }
        }
        Ok(())
    }

    /// Flushes and closes every log `config` does not name (a reload
    /// removed it). Lines from requests still in flight on the old
    /// configuration are dropped and counted.
    pub async fn close_unused(&self, config: &GatewayConfig) {
        let closing: Vec<Arc<LogFile>> = {
            let mut files = self.files();
            let used: Vec<&str> = config
                .listeners
                .iter()
                .flat_map(|l| l.access_logs.paths())
                .collect();
            let gone: Vec<String> = files
                .keys()
                .filter(|path| !used.contains(&path.as_str()))
                .cloned()
                .collect();
            gone.iter().filter_map(|path| files.remove(path)).collect()
        };
        close(closing).await;
    }

    /// Flushes and closes every log (stop).
    pub async fn close_all(&self) {
        let closing: Vec<Arc<LogFile>> = std::mem::take(&mut *self.files()).into_values().collect();
        close(closing).await;
    }

    /// Reopens every log file by its path (SIGUSR1, after logrotate moved
    /// the files away). Returns at once; each writer flushes into the old
    /// file and opens the new one before its next line.
    pub fn reopen(&self) {
        let files = self.files();
        for file in files.values() {
            file.reopen();
        }
        tracing::info!(logs = files.len(), "access logs reopened");
    }

    /// MOSN's `enable_log` / `disable_log`: turns the access log at `path`
    /// (as configured) on or off. A disabled log renders nothing.
    pub fn set_enabled(&self, path: &str, enabled: bool) -> Result<(), UnknownLog> {
        let files = self.files();
        match files.get(path) {
            Some(file) => {
                file.set_enabled(enabled);
                tracing::info!(path, enabled, "access log toggled");
                Ok(())
            }
            None => Err(UnknownLog {
                name: path.to_owned(),
                known: files.keys().cloned().collect(),
            }),
        }
    }

    /// Lines dropped by every access log since start
    /// (`access_log_dropped_total`): queue full, write failed, or logged
    /// after the log closed.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// The open logs with their counters.
    pub fn status(&self) -> Vec<AccessLogStatus> {
        self.files()
            .values()
            .map(|file| AccessLogStatus {
                path: file.path().to_owned(),
                enabled: file.is_enabled(),
                written: file.counters().written.load(Ordering::Relaxed),
                dropped: file.counters().dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Closes `files` off the runtime's threads (closing joins each writer).
async fn close(files: Vec<Arc<LogFile>>) {
    if files.is_empty() {
        return;
    }
    let closed = tokio::task::spawn_blocking(move || {
        for file in &files {
            file.close();
            tracing::info!(path = %file.path(), "access log closed");
        }
    })
    .await;
    if let Err(e) = closed {
        tracing::error!(error = %e, "closing access logs failed");
    }
}
