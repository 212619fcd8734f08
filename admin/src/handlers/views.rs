//! meshgate's own views: `/api/v1/clusters` and `/api/v1/listeners`.

use crate::reply::{self, Reply};
use crate::routes::Call;
use hyper::StatusCode;
use serde_json::json;

/// `/api/v1/clusters`: `{"clusters": [{"name", "lb_type", "hosts":
/// [{"address", "weight", "health", "in_flight", "connections",
/// "requests_total", "metadata": {..}}]}]}`.
pub(crate) fn clusters(call: &Call<'_>) -> Reply {
    reply::json_pretty(
        StatusCode::OK,
        &json!({ "clusters": call.app.source.clusters() }),
    )
}

/// `/api/v1/listeners`: `{"listeners": [{"name", "address", "protocol",
/// "active_connections", "total_connections"}]}`.
pub(crate) fn listeners(call: &Call<'_>) -> Reply {
    reply::json_pretty(
        StatusCode::OK,
        &json!({ "listeners": call.app.source.listeners() }),
    )
}
