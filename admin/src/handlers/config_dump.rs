//! `/api/v1/config_dump` with MOSN's query forms, secrets redacted.

use crate::redact::redact_secrets;
use crate::reply::{self, Reply};
use crate::routes::{Call, fields};
use hyper::StatusCode;
use serde_json::{Map, Value, json};

/// The query forms, as MOSN names them.
const FORMS: &[&str] = &[
    "mosnconfig",
    "allrouters",
    "allclusters",
    "alllisteners",
    "router=NAME",
    "cluster=NAME",
    "listener=NAME",
];

/// Without a query: the whole running config. With one parameter:
/// `mosnconfig` (everything but listeners, routers and clusters),
/// `allrouters` / `allclusters` / `alllisteners` (objects keyed by name,
/// as MOSN's dump), `router=` / `cluster=` / `listener=NAME` (one, 404 if
/// unknown). More than one parameter or an unknown one: 400. Always with
/// secrets redacted (see `redact.rs`).
pub(crate) fn config_dump(call: &Call<'_>) -> Reply {
    let mut config = call.app.source.config();
    redact_secrets(&mut config);
    let query = call.query();
    let (key, value) = match query.as_slice() {
        [] => return reply::json_pretty(StatusCode::OK, &config),
        [one] => (one.0.as_str(), one.1.as_str()),
        _ => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "only support one parameter",
                fields([("forms", json!(FORMS))]),
            );
        }
    };
    let selected = match key {
        "mosnconfig" => Ok(mosn_config(config)),
        "allrouters" => Ok(Value::Object(routers(&config))),
        "allclusters" => Ok(Value::Object(clusters(&config))),
        "alllisteners" => Ok(Value::Object(listeners(&config))),
        "router" => one(routers(&config), "router", value),
        "cluster" => one(clusters(&config), "cluster", value),
        "listener" => one(listeners(&config), "listener", value),
        other => Err(Box::new(reply::error(
            StatusCode::BAD_REQUEST,
            "unknown config_dump parameter",
            fields([("parameter", json!(other)), ("forms", json!(FORMS))]),
        ))),
    };
    match selected {
        Ok(v) => reply::json_pretty(StatusCode::OK, &v),
        Err(reply) => *reply,
    }
}

fn one(mut all: Map<String, Value>, kind: &str, name: &str) -> Result<Value, Box<Reply>> {
    if name.is_empty() {
        return Err(Box::new(reply::error(
            StatusCode::BAD_REQUEST,
            &format!("`{kind}=` needs a name"),
            Map::new(),
        )));
    }
    all.remove(name).ok_or_else(|| {
        Box::new(reply::error(
            StatusCode::NOT_FOUND,
            &format!("no {kind} named {name:?}"),
            fields([("known", json!(all.keys().collect::<Vec<_>>()))]),
        ))
    })
}

/// Everything but the parts `allrouters`, `allclusters` and
/// `alllisteners` show.
fn mosn_config(mut config: Value) -> Value {
    if let Some(servers) = config.get_mut("servers").and_then(Value::as_array_mut) {
        for server in servers.iter_mut().filter_map(Value::as_object_mut) {
            server.remove("listeners");
            server.remove("routers");
        }
    }
    if let Some(manager) = config
        .get_mut("cluster_manager")
        .and_then(Value::as_object_mut)
    {
        manager.remove("clusters");
    }
    config
}

/// `servers[].routers[]` by `router_config_name`.
fn routers(config: &Value) -> Map<String, Value> {
    from_servers(config, "routers", "router_config_name")
}

/// `servers[].listeners[]` by `name`.
fn listeners(config: &Value) -> Map<String, Value> {
    from_servers(config, "listeners", "name")
}

/// `cluster_manager.clusters[]` by `name`.
fn clusters(config: &Value) -> Map<String, Value> {
    by_name(config.pointer("/cluster_manager/clusters"), "name")
}

fn from_servers(config: &Value, list: &str, name_key: &str) -> Map<String, Value> {
    let mut all = Map::new();
    for server in config
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        all.extend(by_name(server.get(list), name_key));
    }
    all
}

fn by_name(list: Option<&Value>, name_key: &str) -> Map<String, Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.get(name_key)?.as_str()?;
            Some((name.to_owned(), item.clone()))
        })
        .collect()
}
