//! The ordered protocol registry and connection-protocol detection.
//!
//! A [`Registry`] is a plain value built at start-up (no globals, no
//! registration by side effect): [`Registry::builtin`] lists the built-in
//! protocols in one visible place, users add theirs with
//! [`Registry::register`]. A listener's `downstream_protocol` selects a
//! [`ProtocolSet`] from it: one name, MOSN's comma list (`"bolt,Http1"`, the
//! order decides ties), or `Auto` (every protocol, in registry order).
//!
//! Detection asks each protocol of the set in order: the first `Match` wins;
//! otherwise, if any said `NeedMore`, read more (bounded by
//! [`ProtocolSet::DETECT_MAX_BYTES`] and the listener's deadline); otherwise
//! no protocol matches and the connection is closed.

use crate::codec::{Detect, FrameCodec};
use crate::error::RegistryError;
use crate::http::{detect_http1, detect_http2};
use std::fmt;
use std::sync::Arc;

/// The selection name meaning "every registered protocol".
pub const AUTO: &str = "Auto";

/// A protocol a listener can speak.
#[derive(Clone)]
pub enum Protocol {
    /// A framed RPC protocol with its codec.
    Framed(Arc<dyn FrameCodec>),
    /// HTTP/1.x (served by hyper in the gateway).
    Http1,
    /// HTTP/2 with prior knowledge (served by h2 in the gateway).
    Http2,
}

impl Protocol {
    /// The configuration name (`bolt`, `Http1`, ...).
    pub fn name(&self) -> &str {
        match self {
            Protocol::Framed(codec) => codec.name(),
            Protocol::Http1 => "Http1",
            Protocol::Http2 => "Http2",
        }
    }

    /// This protocol's detector over a connection's first bytes.
    pub fn detect(&self, prefix: &[u8]) -> Detect {
        match self {
            Protocol::Framed(codec) => codec.detect(prefix),
            Protocol::Http1 => detect_http1(prefix),
            Protocol::Http2 => detect_http2(prefix),
        }
    }

    /// The codec of a framed protocol.
    pub fn codec(&self) -> Option<&Arc<dyn FrameCodec>> {
        match self {
            Protocol::Framed(codec) => Some(codec),
            _ => None,
        }
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every protocol the gateway knows, in detection order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    protocols: Vec<Protocol>,
}

impl Registry {
    /// A registry with nothing in it.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The built-in protocols, in this order: `bolt`, `boltv2`, `dubbo`,
    /// `Http1`, `Http2`. Their first bytes never overlap, so the order only
    /// matters for user protocols registered after them.
    pub fn builtin() -> Registry {
        let mut registry = Registry::empty();
        let builtin: [Protocol; 5] = [
            Protocol::Framed(Arc::new(crate::bolt::BoltCodec::v1())),
            Protocol::Framed(Arc::new(crate::bolt::BoltCodec::v2())),
            Protocol::Framed(Arc::new(crate::dubbo::DubboCodec::new())),
            Protocol::Http1,
            Protocol::Http2,
        ];
        for protocol in builtin {
            // Built-in names are distinct; a clash here is a bug caught by tests.
            let added = registry.add(protocol);
            debug_assert!(added.is_ok(), "built-in protocol names clash");
        }
        registry
    }

    /// Adds a framed protocol after the existing ones. Fails if its name is
    /// taken, reserved (`Auto`), empty or contains a comma.
    pub fn register(&mut self, codec: Arc<dyn FrameCodec>) -> Result<(), RegistryError> {
        self.add(Protocol::Framed(codec))
    }

    fn add(&mut self, protocol: Protocol) -> Result<(), RegistryError> {
        let name = protocol.name();
        if name.is_empty() || name == AUTO || name.contains(',') || name.trim() != name {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        if self.get(name).is_some() {
            return Err(RegistryError::Duplicate(name.to_owned()));
        }
        self.protocols.push(protocol);
        Ok(())
    }

    /// The protocol registered as `name` (exact, case-sensitive, as MOSN).
    pub fn get(&self, name: &str) -> Option<&Protocol> {
        self.protocols.iter().find(|p| p.name() == name)
    }

    /// The codec of the framed protocol registered as `name`.
    pub fn codec(&self, name: &str) -> Option<Arc<dyn FrameCodec>> {
        self.get(name).and_then(Protocol::codec).cloned()
    }

    /// Registered names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.protocols.iter().map(Protocol::name)
    }

    /// Every registered protocol in order.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The protocols a listener's `downstream_protocol` names: `Auto`, one
    /// name, or a comma list (spaces around names are ignored; a name listed
    /// twice counts once, at its first place).
    pub fn select(&self, spec: &str) -> Result<ProtocolSet, RegistryError> {
        if spec.trim() == AUTO {
            return Ok(ProtocolSet {
                protocols: self.protocols.clone(),
            });
        }
        let mut protocols: Vec<Protocol> = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let protocol = self.get(name).ok_or_else(|| RegistryError::Unknown {
                name: name.to_owned(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })?;
            if !protocols.iter().any(|p| p.name() == name) {
                protocols.push(protocol.clone());
            }
        }
        if protocols.is_empty() {
            return Err(RegistryError::EmptySelection(spec.to_owned()));
        }
        Ok(ProtocolSet { protocols })
    }
}

/// The outcome of detection over a set of protocols.
#[derive(Clone, Debug)]
pub enum Detection<'a> {
    /// The first protocol (in set order) that matched.
    Match(&'a Protocol),
    /// Some protocol needs more bytes to decide.
    NeedMore,
    /// No protocol of the set can start with these bytes.
    NoMatch,
}

/// An ordered choice of protocols for one listener.
#[derive(Clone, Debug)]
pub struct ProtocolSet {
    protocols: Vec<Protocol>,
}

impl ProtocolSet {
    /// Detection gives up (no match) once this many bytes could not decide.
    /// The built-in protocols decide within 24 bytes (the h2 preface).
    pub const DETECT_MAX_BYTES: usize = 64;

    /// The protocols in detection order.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The only protocol, when the set has exactly one (no detection needed).
    pub fn single(&self) -> Option<&Protocol> {
        match self.protocols.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Runs the detectors in order over `prefix`. A `NeedMore` at or past
    /// [`ProtocolSet::DETECT_MAX_BYTES`] counts as `NoMatch`, so a peer
    /// cannot keep detection waiting by trickling bytes.
    pub fn detect(&self, prefix: &[u8]) -> Detection<'_> {
        let mut need_more = false;
        for protocol in &self.protocols {
            match protocol.detect(prefix) {
                Detect::Match => return Detection::Match(protocol),
                Detect::NeedMore => need_more = true,
                Detect::NoMatch => {}
            }
        }
        if need_more && prefix.len() < Self::DETECT_MAX_BYTES {
            Detection::NeedMore
        } else {
            Detection::NoMatch
        }
    }
}
