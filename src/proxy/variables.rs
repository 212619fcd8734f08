//! Request variables (MOSN's `%name%` values in header mutations) and
//! applying header add/remove lists to a frame's header view.

use super::context::Downstream;
use meshgate_cluster::Cluster;
use meshgate_codecs::Headers;
use meshgate_router::{HeaderToAdd, HeaderValueSource};

/// The value of a variable, if it is one meshgate knows (MOSN's names).
pub(crate) fn variable(
    name: &str,
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) -> Option<String> {
    Some(match name {
        "downstream_remote_address" => downstream.peer.to_string(),
        "downstream_remote_ip" => downstream.peer.ip().to_string(),
        "listener_name" => downstream.listener.to_string(),
        "protocol" | "downstream_protocol" => downstream.protocol.to_string(),
        "upstream_cluster" => cluster?.name().to_owned(),
        _ => return None,
    })
}

/// Removes `remove`, then sets every `add` (one value per key in RPC
/// header maps, so `append` replaces too). Unknown variables give "".
pub(crate) fn apply_mutations(
    headers: &mut Headers,
    remove: &[String],
    add: &[HeaderToAdd],
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) {
    for key in remove {
        headers.remove(key);
    }
    for header in add {
        match &header.value {
            HeaderValueSource::Static(value) => headers.insert(&header.key, value.as_bytes()),
            HeaderValueSource::Variable(name) => {
                let value = variable(name, downstream, cluster).unwrap_or_default();
                headers.insert(&header.key, value.as_bytes());
            }
        }
    }
}
