//! A running gateway: its listeners, its proxy core, and the start /
//! reload / stop transitions of its lifecycle.

use super::admin::{BoundListeners, GatewaySource, LoggerSwitch};
use super::lifecycle::{Lifecycle, State};
use crate::accesslog::{AccessLogs, OpenError};
use crate::config::{ConfigErrors, GatewayConfig};
use crate::logging::LogControl;
use crate::proxy::ProxyCore;
use crate::server::{ListenerHandle, Tracker, bind_listener};
use meshgate_admin::{AdminServer, AdminSource};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Why a start or reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The new configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// A listener could not be bound.
    #[error("listener {name:?} cannot bind {addr}: {source}")]
    Bind {
        /// The listener.
        name: String,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An access log file could not be opened.
    #[error(transparent)]
    AccessLog(#[from] OpenError),
    /// The admin API could not bind its address.
    #[error("admin API cannot bind {addr}: {source}")]
    Admin {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Reload or stop was asked in a state that does not allow it.
    #[error("the gateway is {0}, not Running")]
    NotRunning(State),
}

/// What a gateway is started with besides its configuration.
#[derive(Default, Clone)]
pub struct GatewayOptions {
    /// The process log's control, for the admin API's log endpoints
    /// (`None`: the level cannot be changed, e.g. in tests).
    pub log: Option<Arc<LogControl>>,
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("log", &self.log)
            .finish()
    }
}

/// The gateway.
#[derive(Debug)]
pub struct Gateway {
    core: Arc<ProxyCore>,
    lifecycle: Lifecycle,
    tracker: Arc<Tracker>,
    listeners: Mutex<BTreeMap<String, ListenerHandle>>,
    access_logs: Arc<AccessLogs>,
    bound: BoundListeners,
    options: GatewayOptions,
    /// The admin API server, when the config has `admin`; taken at stop.
    admin: std::sync::Mutex<Option<AdminServer>>,
}

impl Gateway {
    /// Binds every listener of `config` and starts serving. On a bind
    /// failure, listeners bound so far are closed and the error returned.
    pub async fn start(config: GatewayConfig) -> Result<Gateway, ControlError> {
        Gateway::start_with(config, GatewayOptions::default()).await
    }

    /// [`Gateway::start`] with the process's log control.
    pub async fn start_with(
        mut config: GatewayConfig,
        options: GatewayOptions,
    ) -> Result<Gateway, ControlError> {
        let access_logs = Arc::new(AccessLogs::default());
        access_logs.open_for(&mut config)?;
        let config = Arc::new(config);
        let core = Arc::new(ProxyCore::new(Arc::clone(&config)));
        let tracker = Arc::new(Tracker::default());
        let lifecycle = Lifecycle::new();
        let mut listeners = BTreeMap::new();
        for spec in &config.listeners {
            match bind_listener(spec, Arc::clone(&core), Arc::clone(&tracker)).await {
                Ok(handle) => {
                    listeners.insert(spec.name.clone(), handle);
                }
                Err(source) => {
                    for (_, handle) in listeners {
                        handle.stop().await;
                    }
                    access_logs.close_all().await;
                    lifecycle.advance(State::Stopped);
                    return Err(ControlError::Bind {
                        name: spec.name.clone(),
                        addr: spec.addr,
                        source,
                    });
                }
            }
        }
        let bound = BoundListeners::default();
        record_bound(&bound, &listeners);
        let mut gateway = Gateway {
            core,
            lifecycle,
            tracker,
            listeners: Mutex::new(listeners),
            access_logs,
            bound,
            options,
            admin: std::sync::Mutex::new(None),
        };
        if let Some(addr) = config.admin {
            let source: Arc<dyn AdminSource> = Arc::new(gateway.admin_source());
            match meshgate_admin::bind(addr, source).await {
                Ok(server) => {
                    *gateway.admin.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(server)
                }
                Err(source) => {
                    for (_, handle) in std::mem::take(gateway.listeners.get_mut()) {
                        handle.stop().await;
                    }
                    gateway.access_logs.close_all().await;
                    gateway.lifecycle.advance(State::Stopped);
                    return Err(ControlError::Admin { addr, source });
                }
            }
        }
        config.clusters.start_health_checks(&config.registry);
        gateway.lifecycle.advance(State::Running);
        Ok(gateway)
    }

    /// The admin API's bound address, when the config has `admin` and the
    /// gateway has not stopped.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(AdminServer::local_addr)
    }

    /// The gateway as the admin API sees it.
    pub fn admin_source(&self) -> GatewaySource {
        GatewaySource {
            core: Arc::clone(&self.core),
            state: self.lifecycle.watch(),
            bound: Arc::clone(&self.bound),
            log: self.options.log.clone(),
            access_logs: Some(access_log_switch(&self.access_logs)),
            access_log_dropped: Some({
                let logs = Arc::clone(&self.access_logs);
                Arc::new(move || logs.dropped_total())
            }),
        }
    }

    /// The open access logs: reopen (SIGUSR1), enable/disable by path,
    /// the dropped-lines counter.
    pub fn access_logs(&self) -> &Arc<AccessLogs> {
        &self.access_logs
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.lifecycle.state()
    }

    /// A receiver of lifecycle changes.
    pub fn watch_state(&self) -> tokio::sync::watch::Receiver<State> {
        self.lifecycle.watch()
    }

    /// The configuration serving new requests.
    pub fn config(&self) -> Arc<GatewayConfig> {
        self.core.config()
    }

    /// The proxy core (pools, configuration).
    pub fn core(&self) -> &Arc<ProxyCore> {
        &self.core
    }

    /// Live downstream connections.
    pub fn connections(&self) -> usize {
        self.tracker.connections()
    }

    /// The bound address of listener `name`.
    /// Listener `name`'s counters: connections accepted, detection outcomes.
    pub async fn listener_stats(&self, name: &str) -> Option<crate::server::ListenerCounts> {
        self.listeners
            .lock()
            .await
            .get(name)
            .map(|h| h.stats().snapshot())
    }

    /// Listener `name`'s TCP proxy counters.
    pub async fn tcp_proxy_stats(&self, name: &str) -> Option<crate::server::TcpProxyCounts> {
        self.listeners
            .lock()
            .await
            .get(name)
            .map(|h| h.stats().tcp_proxy().snapshot())
    }

    /// The bound address of listener `name`.
    pub async fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .lock()
            .await
            .get(name)
            .map(ListenerHandle::local_addr)
    }

    /// Re-reads `path` and reloads it (the running clusters' hosts keep
    /// their stats and health). On error nothing changes.
    pub async fn reload_file(&self, path: &Path) -> Result<(), ControlError> {
        let previous = self.core.config();
        let config = crate::config::load_file(path, Some(&previous.clusters))?;
        self.reload(config).await
    }

    /// Swaps in `config`: new listeners are bound first (a failure leaves
    /// everything as it was), then routes, clusters, filters and listener
    /// settings switch for new requests in one step, then listeners that
    /// went away stop accepting. Requests in flight finish on the
    /// configuration they started with; their connections stay open.
    pub async fn reload(&self, mut config: GatewayConfig) -> Result<(), ControlError> {
        if self.state() != State::Running {
            return Err(ControlError::NotRunning(self.state()));
        }
        if let Err(e) = self.access_logs.open_for(&mut config) {
            self.access_logs.close_unused(&self.core.config()).await;
            return Err(e.into());
        }
        let config = Arc::new(config);
        let mut listeners = self.listeners.lock().await;
        let mut fresh = BTreeMap::new();
        for spec in &config.listeners {
            if listeners.get(&spec.name).is_some_and(|h| h.serves(spec)) {
                continue;
            }
            // A listener moving to another address is bound anew; one
            // keeping its address must release it first.
            if let Some(old) = listeners
                .get(&spec.name)
                .filter(|h| h.local_addr() == spec.addr)
            {
                tracing::debug!(listener = %old.name(), "rebinding in place");
                if let Some(old) = listeners.remove(&spec.name) {
                    old.stop().await;
                }
            }
            match bind_listener(spec, Arc::clone(&self.core), Arc::clone(&self.tracker)).await {
                Ok(handle) => {
                    fresh.insert(spec.name.clone(), handle);
                }
                Err(source) => {
                    for (_, handle) in fresh {
                        handle.stop().await;
                    }
                    self.access_logs.close_unused(&self.core.config()).await;
                    return Err(ControlError::Bind {
                        name: spec.name.clone(),
                        addr: spec.addr,
                        source,
                    });
                }
            }
        }
        let previous = self.core.config();
        // The new build's checkers take over the hosts' shared health.
        config.clusters.start_health_checks(&config.registry);
        self.core.swap(Arc::clone(&config));
        previous.clusters.stop_health_checks();
        let keep: HashSet<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        let stale: Vec<String> = listeners
            .keys()
            .filter(|name| !keep.contains(name.as_str()) || fresh.contains_key(*name))
            .cloned()
            .collect();
        for name in stale {
            if let Some(handle) = listeners.remove(&name) {
                handle.stop().await;
            }
        }
        listeners.extend(fresh);
        self.access_logs.close_unused(&config).await;
        record_bound(&self.bound, &listeners);
        let hosts: HashSet<SocketAddr> = config
            .clusters
            .clusters()
            .flat_map(|c| c.hosts().hosts().iter().map(|h| h.address()))
            .collect();
        self.core.upstreams().retain(&hosts);
        tracing::info!(
            listeners = listeners.len(),
            clusters = config.clusters.len(),
            "configuration reloaded"
        );
        Ok(())
    }

    /// Graceful stop: stop accepting, let connections finish their
    /// in-flight requests (new requests on them are still served while any
    /// are in flight), and close; after `grace`, close whatever is left.
    /// Ends in `Stopped`.
    pub async fn stop(&self, grace: Duration) {
        if !self.lifecycle.advance(State::Draining) {
            return;
        }
        let mut listeners = self.listeners.lock().await;
        for (_, handle) in std::mem::take(&mut *listeners) {
            handle.stop().await;
        }
        record_bound(&self.bound, &listeners);
        self.tracker.start_draining();
        if tokio::time::timeout(grace, self.tracker.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.connections(),
                ?grace,
                "grace period over; closing the remaining connections"
            );
            self.tracker.close_all();
            // Each closes at its next poll; bounded all the same.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.all_closed()).await;
        }
        self.core.upstreams().retain(&HashSet::new());
        self.access_logs.close_all().await;
        self.core.config().clusters.stop_health_checks();
        self.lifecycle.advance(State::Stopped);
        // The admin API answers until the end (states shows Draining).
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(server) = admin {
            server.shutdown().await;
        }
    }
}

/// Publishes the listeners' bound addresses for the admin API.
fn record_bound(bound: &BoundListeners, listeners: &BTreeMap<String, ListenerHandle>) {
    let addrs = listeners
        .iter()
        .map(|(name, handle)| (name.clone(), handle.local_addr()))
        .collect();
    *bound.write().unwrap_or_else(|e| e.into_inner()) = addrs;
}

/// The admin API's `enable_log` / `disable_log` for access logs, by path.
fn access_log_switch(logs: &Arc<AccessLogs>) -> LoggerSwitch {
    let logs = Arc::clone(logs);
    Arc::new(move |name: &str, on: bool| logs.set_enabled(name, on).map_err(|e| e.to_string()))
}
