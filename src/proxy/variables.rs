//! Request variables (MOSN's `%name%` values in header mutations) and
//! applying header add/remove lists to any protocol's header view.

use super::context::Downstream;
use super::filter::FilterHeaders;
use meshgate_cluster::Cluster;
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

/// Removes `remove`, then sets every `add` (`append` adds beside existing
/// values where the protocol has several per key; RPC header maps have
/// one, so there it replaces too). Unknown variables give "".
pub(crate) fn apply_mutations<H: FilterHeaders + ?Sized>(
    headers: &mut H,
    remove: &[String],
    add: &[HeaderToAdd],
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) {
    for key in remove {
        headers.remove(key);
    }
    for header in add {
        let owned;
        let value = match &header.value {
            HeaderValueSource::Static(value) => value.as_str(),
            HeaderValueSource::Variable(name) => {
                owned = variable(name, downstream, cluster).unwrap_or_default();
                owned.as_str()
            }
        };
        if header.append {
            headers.append(&header.key, value);
        } else {
            headers.set(&header.key, value);
        }
    }
}
