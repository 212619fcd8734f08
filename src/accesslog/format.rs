//! MOSN's access log format: text with `%variable%` tokens, parsed once
//! when the configuration is built into a list of pieces, then rendered
//! per request into a caller's buffer.
//!
//! Values are written the way MOSN's variables print them: `start_time` as
//! `2006/01/02 15:04:05.000` (UTC here), durations in Go's
//! `time.Duration.String()` form (`1.234567ms`, `2.5s`, `1m30s`), a value
//! that does not exist for this request (no upstream host for a request
//! that found no route, an absent header) as `-`. Control characters in
//! header values are escaped (`\x0a`), so one request is always one line.

use meshgate_codecs::Headers;
use meshgate_router::RouteRequest;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// MOSN's default format (`types.DefaultAccessLogFormat`), used when
/// `log_format` is empty.
pub const DEFAULT_FORMAT: &str = "%start_time% %request_received_duration% %response_received_duration% %bytes_sent% %bytes_received% %protocol% %response_code% %duration% %response_flag% %response_code% %upstream_local_address% %downstream_local_address% %downstream_remote_address% %upstream_host%";

/// What MOSN prints for a variable with no value.
const MISSING: &[u8] = b"-";

/// The request variables a format may name (MOSN's names).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    StartTime,
    RequestReceivedDuration,
    ResponseReceivedDuration,
    RequestFinishedDuration,
    Duration,
    BytesSent,
    BytesReceived,
    Protocol,
    ResponseCode,
    ResponseFlag,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    UpstreamHost,
    UpstreamCluster,
    ListenerName,
    RequestId,
    RequestHeader(Box<str>),
    ResponseHeader(Box<str>),
    /// A name no variable has: rendered as `-` (and warned about).
    Unknown,
}

impl Var {
    fn named(name: &str) -> Var {
        if let Some(header) = name
            .strip_prefix("request_header_")
            .filter(|h| !h.is_empty())
        {
            return Var::RequestHeader(header.into());
        }
        if let Some(header) = name
            .strip_prefix("response_header_")
            .filter(|h| !h.is_empty())
        {
            return Var::ResponseHeader(header.into());
        }
        match name {
            "start_time" => Var::StartTime,
            "request_received_duration" => Var::RequestReceivedDuration,
            "response_received_duration" => Var::ResponseReceivedDuration,
            "request_finished_duration" => Var::RequestFinishedDuration,
            "duration" => Var::Duration,
            "bytes_sent" => Var::BytesSent,
            "bytes_received" => Var::BytesReceived,
            "protocol" => Var::Protocol,
            "response_code" => Var::ResponseCode,
            "response_flag" | "response_flags" => Var::ResponseFlag,
            "upstream_local_address" => Var::UpstreamLocalAddress,
            "downstream_local_address" => Var::DownstreamLocalAddress,
            "downstream_remote_address" => Var::DownstreamRemoteAddress,
            "upstream_host" => Var::UpstreamHost,
            "upstream_cluster" => Var::UpstreamCluster,
            "listener_name" => Var::ListenerName,
            "request_id" => Var::RequestId,
            _ => Var::Unknown,
        }
    }
}

/// One piece of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<[u8]>),
    Var(Var),
}

/// Where a `request_header_*` / `response_header_*` variable reads from:
/// a frame's header view, an HTTP request (its header fields, plus
/// `:method`, `:path`, `:authority` and MOSN's `x-mosn-method`,
/// `x-mosn-path`, `x-mosn-host`), or an HTTP response's header map.
#[derive(Clone, Copy)]
pub enum LoggedHeaders<'a> {
    /// An RPC frame's headers, values as they are on the wire.
    Frame(&'a Headers),
    /// An HTTP request, as routes see it (values that are not visible
    /// ASCII log as `-`).
    HttpRequest(&'a dyn RouteRequest),
    /// An HTTP response's fields (the first value of a repeated field).
    Http(&'a http::HeaderMap),
}

impl<'a> LoggedHeaders<'a> {
    fn get(self, name: &str) -> Option<&'a [u8]> {
        match self {
            LoggedHeaders::Frame(headers) => headers.get(name),
            LoggedHeaders::HttpRequest(request) => request.header(name).map(str::as_bytes),
            LoggedHeaders::Http(map) => map.get(name).map(|v| v.as_bytes()),
        }
    }
}

impl std::fmt::Debug for LoggedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoggedHeaders::Frame(headers) => f.debug_tuple("Frame").field(headers).finish(),
            LoggedHeaders::HttpRequest(_) => f.write_str("HttpRequest"),
            LoggedHeaders::Http(map) => f.debug_tuple("Http").field(map).finish(),
        }
    }
}

/// What one request looked like, as a format reads it. Built once per
/// request and rendered by every access log of its listener.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Wall-clock time the request was received.
    pub start: SystemTime,
    /// From receipt until the reply was ready.
    pub duration: Duration,
    /// From receipt until the proxy began serving it.
    pub request_received: Option<Duration>,
    /// From receipt until the upstream's response arrived (`None` for a
    /// local reply).
    pub response_received: Option<Duration>,
    /// The downstream protocol's name.
    pub protocol: &'a str,
    /// The listener's name.
    pub listener: &'a str,
    /// The request id the client used (`None`: HTTP has none).
    pub request_id: Option<u64>,
    /// The request's headers (RPC: with the routing keys `service`,
    /// `method`).
    pub request_headers: LoggedHeaders<'a>,
    /// The reply's headers, if there is a reply.
    pub response_headers: Option<LoggedHeaders<'a>>,
    /// The reply's status: MOSN's neutral code for RPC, the HTTP status
    /// for HTTP (`None`: no reply, oneway).
    pub response_code: Option<u16>,
    /// Why the gateway answered itself, if it did.
    pub response_flag: Option<&'a str>,
    /// Request body bytes (HTTP: as read from the client).
    pub bytes_received: u64,
    /// Reply body bytes (HTTP: as written to the client).
    pub bytes_sent: u64,
    /// The gateway's address on the downstream connection.
    pub downstream_local: Option<SocketAddr>,
    /// The client's address.
    pub downstream_remote: SocketAddr,
    /// The upstream host of the last try, as configured.
    pub upstream_host: Option<&'a str>,
    /// The route's cluster.
    pub upstream_cluster: Option<&'a str>,
}

/// A parsed `log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
    reads_response_headers: bool,
}

impl Format {
    /// Parses `text` (MOSN's default format when empty). Returns the
    /// format and the names of the variables it does not know, in order;
    /// those render as `-`.
    ///
    /// `%name%` is a variable when `name` is made of letters, digits, `_`,
    /// `-` and `.`; `%%` is a literal `%`; any other `%` is literal text.
    pub fn parse(text: &str) -> (Format, Vec<String>) {
        let text = if text.is_empty() {
            DEFAULT_FORMAT
        } else {
            text
        };
        let mut pieces = Vec::new();
        let mut unknown = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('%') {
            literal.extend_from_slice(&rest.as_bytes()[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('%') else {
                literal.extend_from_slice(&rest.as_bytes()[open..]);
                rest = "";
                break;
            };
            let name = &after[..close];
            if name.is_empty() {
                literal.push(b'%');
                rest = &after[1..];
            } else if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
                }
                let var = Var::named(name);
                if var == Var::Unknown {
                    unknown.push(name.to_owned());
                }
                pieces.push(Piece::Var(var));
                rest = &after[close + 1..];
            } else {
                // Not a variable name: this `%` is text, and the closing
                // one may open the next variable.
                literal.push(b'%');
                rest = after;
            }
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.into()));
        }
        let reads_response_headers = pieces
            .iter()
            .any(|p| matches!(p, Piece::Var(Var::ResponseHeader(_))));
        (
            Format {
                pieces,
                reads_response_headers,
            },
            unknown,
        )
    }

    /// True when the format names a response header (the reply's header
    /// view must then be filled before rendering).
    pub fn reads_response_headers(&self) -> bool {
        self.reads_response_headers
    }

    /// Appends `record` rendered as one line (with its `\n`) to `out`.
    pub fn render(&self, record: &Record<'_>, out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.extend_from_slice(text),
                Piece::Var(var) => render_var(var, record, out),
            }
        }
        out.push(b'\n');
    }
}

fn render_var(var: &Var, r: &Record<'_>, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = match var {
        Var::StartTime => {
            write_utc(out, r.start);
            Ok(())
        }
        Var::RequestReceivedDuration => opt(out, r.request_received, write_go_duration),
        Var::ResponseReceivedDuration => opt(out, r.response_received, write_go_duration),
        Var::Duration | Var::RequestFinishedDuration => {
            write_go_duration(out, r.duration);
            Ok(())
        }
        Var::BytesSent => write!(out, "{}", r.bytes_sent),
        Var::BytesReceived => write!(out, "{}", r.bytes_received),
        Var::Protocol => text(out, Some(r.protocol)),
        Var::ResponseCode => opt(out, r.response_code, |out, code| {
            let _ = write!(out, "{code}");
        }),
        Var::ResponseFlag => text(out, r.response_flag),
        // Pools do not report their connections' local addresses.
        Var::UpstreamLocalAddress | Var::Unknown => text(out, None),
        Var::DownstreamLocalAddress => opt(out, r.downstream_local, |out, addr| {
            let _ = write!(out, "{addr}");
        }),
        Var::DownstreamRemoteAddress => write!(out, "{}", r.downstream_remote),
        Var::UpstreamHost => text(out, r.upstream_host),
        Var::UpstreamCluster => text(out, r.upstream_cluster),
        Var::ListenerName => text(out, Some(r.listener)),
        Var::RequestId => opt(out, r.request_id, |out, id| {
            let _ = write!(out, "{id}");
        }),
        Var::RequestHeader(name) => header(out, r.request_headers.get(name)),
        Var::ResponseHeader(name) => header(out, r.response_headers.and_then(|h| h.get(name))),
    };
}

fn opt<T>(
    out: &mut Vec<u8>,
    value: Option<T>,
    write: impl FnOnce(&mut Vec<u8>, T),
) -> std::io::Result<()> {
    match value {
        Some(value) => write(out, value),
        None => out.extend_from_slice(MISSING),
    }
    Ok(())
}

fn text(out: &mut Vec<u8>, value: Option<&str>) -> std::io::Result<()> {
    header(out, value.map(str::as_bytes))
}

/// A value as it is, control characters escaped; `-` when absent.
fn header(out: &mut Vec<u8>, value: Option<&[u8]>) -> std::io::Result<()> {
    let Some(value) = value else {
        out.extend_from_slice(MISSING);
        return Ok(());
    };
    for &b in value {
        if b < 0x20 || b == 0x7f {
            let _ = write!(out, "\\x{b:02x}");
        } else {
            out.push(b);
        }
    }
    Ok(())
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `1.234567ms`,
/// `2.5s`, `1m30s`, `1h0m0.5s`.
pub(crate) fn write_go_duration(out: &mut Vec<u8>, d: Duration) {
    let nanos = d.as_nanos();
    let _ = match nanos {
        0 => write!(out, "0s"),
        1..1_000 => write!(out, "{nanos}ns"),
        1_000..1_000_000 => {
            write_fraction(out, nanos, 1_000, 3);
            write!(out, "µs")
        }
        1_000_000..1_000_000_000 => {
            write_fraction(out, nanos, 1_000_000, 6);
            write!(out, "ms")
        }
        _ => {
            let secs = nanos / 1_000_000_000;
            let (hours, minutes) = (secs / 3600, secs / 60 % 60);
            if hours > 0 {
                let _ = write!(out, "{hours}h");
            }
            if secs >= 60 {
                let _ = write!(out, "{minutes}m");
            }
            write_fraction(out, nanos % 60_000_000_000, 1_000_000_000, 9);
            write!(out, "s")
        }
    };
}

/// `value / unit` with the remainder as up to `digits` decimals, trailing
/// zeros dropped.
fn write_fraction(out: &mut Vec<u8>, value: u128, unit: u128, digits: usize) {
    let _ = write!(out, "{}", value / unit);
    let rest = value % unit;
    if rest > 0 {
        let decimals = format!("{rest:0digits$}");
        let _ = write!(out, ".{}", decimals.trim_end_matches('0'));
    }
}

/// `2006/01/02 15:04:05.000` (MOSN's layout), in UTC.
pub(crate) fn write_utc(out: &mut Vec<u8>, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let of_day = secs % 86_400;
    let _ = write!(
        out,
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    );
}

/// Year, month, day of the proleptic Gregorian calendar for a count of
/// days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
