//! MOSN's own endpoints with MOSN's shapes: the API list, version, states
//! and log control. (`config_dump` and `stats` have their own modules.)

use super::dashboard;
use crate::reply::{self, Reply};
use crate::routes::{Call, ROUTES, fields};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::fmt::Write as _;

/// `/`: MOSN's "supported APIs:" list, one path a line (with method and
/// purpose); a browser (`Accept: text/html`) gets the dashboard instead.
pub(crate) fn help(call: &Call<'_>) -> Reply {
    if call.wants_html() {
        return dashboard::page(call);
    }
    let mut out = String::from("supported APIs:\n");
    let width = ROUTES.iter().map(|r| r.path.len()).max().unwrap_or(0);
    for route in ROUTES.iter().filter(|r| r.path != "/") {
        let method = match route.verb {
            crate::routes::Verb::Get => "GET ",
            crate::routes::Verb::Post => "POST",
        };
        let _ = writeln!(out, "{:width$}  {method}  {}", route.path, route.summary);
    }
    reply::text(StatusCode::OK, out)
}

/// `/api/v1/version`: `{"version": "..."}`.
pub(crate) fn version(call: &Call<'_>) -> Reply {
    reply::json_pretty(
        StatusCode::OK,
        &json!({ "version": call.app.source.version() }),
    )
}

/// MOSN's stage numbers (`stagemanager.State`) for our lifecycle names.
fn mosn_state_code(name: &str) -> u32 {
    match name {
        "Starting" => 4,
        "Running" => 6,
        "Draining" => 8,
        "Stopping" => 9,
        "Stopped" => 11,
        _ => 0,
    }
}

/// `/api/v1/states`: MOSN's `pid=N&state=N` line (state as MOSN's stage
/// number: 4 starting, 6 running, 8 graceful stopping, 11 stopped). With
/// `Accept: application/json`: `{"pid", "state", "state_name",
/// "uptime_seconds"}`.
pub(crate) fn states(call: &Call<'_>) -> Reply {
    let state = call.app.source.state();
    let pid = std::process::id();
    let code = mosn_state_code(&state.name);
    let wants_json = call
        .parts
        .headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        reply::json_pretty(
            StatusCode::OK,
            &json!({
                "pid": pid,
                "state": code,
                "state_name": state.name,
                "uptime_seconds": state.uptime.as_secs_f64(),
            }),
        )
    } else {
        reply::text(StatusCode::OK, format!("pid={pid}&state={code}\n"))
    }
}

/// `/api/v1/get_loglevel`: MOSN's `{"<logger>": "<LEVEL>"}`; meshgate has
/// one process log, named `default`.
pub(crate) fn get_log_level(call: &Call<'_>) -> Reply {
    let level = call.app.source.log_level().to_ascii_uppercase();
    reply::json_pretty(StatusCode::OK, &json!({ "default": level }))
}

/// MOSN's `update_loglevel` body.
#[derive(Deserialize)]
struct LogLevelData {
    #[serde(default)]
    log_path: String,
    log_level: String,
}

/// `POST /api/v1/update_loglevel` with `{"log_path": "...", "log_level":
/// "DEBUG"}` (MOSN's level names, any case). As in MOSN, `log_path` names
/// the error log to change by its path, and a path naming no log is
/// refused; the source decides which paths name its logs.
/// 200 `update logger success`; 400 with a JSON error otherwise.
pub(crate) fn update_log_level(call: &Call<'_>) -> Reply {
    let data: LogLevelData = match serde_json::from_slice(&call.body) {
        Ok(d) => d,
        Err(e) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "update logger failed",
                fields([
                    ("detail", json!(format!("bad JSON body: {e}"))),
                    (
                        "expected",
                        json!({"log_path": "default", "log_level": "DEBUG"}),
                    ),
                ]),
            );
        }
    };
    let level = match data.log_level.to_ascii_uppercase().as_str() {
        // MOSN's FATAL has no tracing level: the closest is `error`.
        "FATAL" | "ERROR" => "error",
        "WARN" | "WARNING" => "warn",
        "INFO" => "info",
        "DEBUG" => "debug",
        "TRACE" => "trace",
        "OFF" => "off",
        _ => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "update logger failed",
                fields([
                    (
                        "detail",
                        json!(format!("not found log level: {}", data.log_level)),
                    ),
                    (
                        "levels",
                        json!(["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "OFF"]),
                    ),
                ]),
            );
        }
    };
    match call.app.source.set_log_level(&data.log_path, level) {
        Ok(()) => {
            tracing::info!(log_path = %data.log_path, level, "log level changed through the admin API");
            reply::text(StatusCode::OK, "update logger success\n")
        }
        Err(detail) => reply::error(
            StatusCode::BAD_REQUEST,
            "update logger failed",
            fields([
                ("log_path", json!(data.log_path)),
                ("detail", json!(detail)),
            ]),
        ),
    }
}

/// `POST /api/v1/enable_log` with the logger name as the whole body.
pub(crate) fn enable_log(call: &Call<'_>) -> Reply {
    toggle_log(call, true)
}

/// `POST /api/v1/disable_log` with the logger name as the whole body.
pub(crate) fn disable_log(call: &Call<'_>) -> Reply {
    toggle_log(call, false)
}

fn toggle_log(call: &Call<'_>, enabled: bool) -> Reply {
    let verb = if enabled { "enable" } else { "disable" };
    let failed = format!("{verb} logger failed");
    let Ok(logger) = std::str::from_utf8(&call.body) else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            &failed,
            fields([("detail", json!("the body is not UTF-8"))]),
        );
    };
    let logger = logger.trim();
    if logger.is_empty() {
        return reply::error(
            StatusCode::BAD_REQUEST,
            &failed,
            fields([(
                "detail",
                json!("the body must name a logger (for example `default`)"),
            )]),
        );
    }
    match call.app.source.set_log_enabled(logger, enabled) {
        Ok(()) => reply::text(StatusCode::OK, format!("{verb} logger success\n")),
        Err(detail) => reply::error(
            StatusCode::BAD_REQUEST,
            &failed,
            fields([("logger", json!(logger)), ("detail", json!(detail))]),
        ),
    }
}
