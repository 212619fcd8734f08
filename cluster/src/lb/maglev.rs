//! `LB_MAGLEV`: consistent hashing with Google's Maglev lookup table.
//!
//! Requests carrying the same hash key (from the route's hash policy) go to
//! the same host, and when a host leaves the set only about its share of
//! keys move. The table has a prime number of slots, each naming a host;
//! every host walks its own pseudo-random permutation of the slots (from an
//! offset and a skip derived from a hash of its address) and hosts take
//! turns claiming the next free slot on their permutation until the table is
//! full. A lookup is `table[hash % size]`.
//!
//! Details and where they come from:
//! - Table size 65537, or 655373 from 30000 hosts up: MOSN's sizes
//!   (`lb_maglev` via go-maglev's `SmallM`/`BigM`), Envoy's default too.
//! - Weights are honoured the way Envoy does it (a host of half the top
//!   weight claims a slot every other turn); MOSN's maglev ignores weights.
//!   With equal weights both build the classic table.
//! - The host hashes are our own (FNV-1a 64 then a 64-bit finaliser, two
//!   seeds), so tables differ from MOSN's for the same hosts; what matters,
//!   that they are stable across restarts and machines, holds.
//! - The request's key is mixed before the modulo, so keys that are small
//!   or sequential integers still spread over the table.
//! - When the looked-up host is not eligible (unhealthy, already tried),
//!   the lookup walks on to the following slots: the stand-in host is still
//!   a function of the key. MOSN scans its host list left then right instead.
//! - Without a hash key MOSN returns no host; here the pick is uniformly
//!   random, so a route without a hash policy still gets served.

use super::random::pick_uniform;
use super::{HostFilter, LbContext, LoadBalancer};
use crate::host::{Host, HostSet};
use std::sync::Arc;

const SMALL_TABLE: usize = 65_537;
const BIG_TABLE: usize = 655_373;
const BIG_TABLE_FROM_HOSTS: usize = 30_000;

/// `LB_MAGLEV`.
pub(crate) struct Maglev {
    hosts: HostSet,
    /// Slot → host index. Empty when there is no host.
    table: Box<[u32]>,
}

impl std::fmt::Debug for Maglev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maglev")
            .field("hosts", &self.hosts)
            .field("table_size", &self.table.len())
            .finish()
    }
}

impl Maglev {
    pub(crate) fn new(hosts: HostSet) -> Maglev {
        let size = if hosts.len() >= BIG_TABLE_FROM_HOSTS {
            BIG_TABLE
        } else {
            SMALL_TABLE
        };
        let table = build_table(hosts.hosts(), size);
        Maglev { hosts, table }
    }

    fn lookup(&self, key: u64, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        let hosts = self.hosts.hosts();
        let size = self.table.len();
        // Fits: the table size is far below u64::MAX.
        let slot = (mix64(key) % size as u64) as usize;
        let host = &hosts[self.table[slot] as usize];
        if filter.accepts(host) {
            return Some(Arc::clone(host));
        }
        // Walking the table is bounded by its size only if some host is
        // eligible; check that first (O(hosts)) so a hopeless pass is cheap.
        if !hosts.iter().any(|h| filter.accepts(h)) {
            return None;
        }
        (1..size)
            .map(|i| &hosts[self.table[(slot + i) % size] as usize])
            .find(|h| filter.accepts(h))
            .cloned()
    }
}

impl LoadBalancer for Maglev {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        if self.table.is_empty() {
            return None;
        }
        match cx.hash_key {
            Some(key) => self.lookup(key, filter),
            None => pick_uniform(self.hosts.hosts(), filter),
        }
    }
}

/// Fills a `size`-slot table (size prime) for `hosts`; see the module docs.
fn build_table(hosts: &[Arc<Host>], size: usize) -> Box<[u32]> {
    const EMPTY: u32 = u32::MAX;
    if hosts.is_empty() {
        return Box::default();
    }
    let size64 = size as u64;
    struct Walker {
        offset: u64,
        skip: u64,
        next: u64,
        weight: u64,
        target: u64,
    }
    let mut walkers: Vec<Walker> = hosts
        .iter()
        .map(|h| {
            let name = h.address_text().as_bytes();
            Walker {
                offset: hash_bytes(name, 0) % size64,
                skip: hash_bytes(name, 1) % (size64 - 1) + 1,
                next: 0,
                weight: u64::from(h.weight()),
                target: 0,
            }
        })
        .collect();
    let max_weight = walkers.iter().map(|w| w.weight).max().unwrap_or(1);
    let mut table = vec![EMPTY; size];
    let mut filled = 0;
    let mut round = 1u64;
    while filled < size {
        for (index, w) in walkers.iter_mut().enumerate() {
            // A host of weight w claims a slot in w of every max_weight rounds.
            if round * w.weight < w.target {
                continue;
            }
            w.target += max_weight;
            loop {
                let slot = ((w.offset + w.next * w.skip) % size64) as usize;
                w.next += 1;
                if table[slot] == EMPTY {
                    // Host counts fit in u32 (below the big table size).
                    table[slot] = index as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == size {
                break;
            }
        }
        round += 1;
    }
    table.into_boxed_slice()
}

/// FNV-1a over `bytes` with a seed, then [`mix64`]: stable across builds,
/// machines and Rust versions (unlike `std`'s hasher).
fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn hosts(weights: &[u32]) -> Vec<Arc<Host>> {
        weights
            .iter()
            .zip(0u16..)
            .map(|(&w, i)| {
                let h = Host::new(SocketAddr::from(([10, 0, 0, 1], 9000 + i)));
                Arc::new(h.with_weight(w))
            })
            .collect()
    }

    fn shares(table: &[u32], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &i in table {
            c[i as usize] += 1;
        }
        c
    }

    #[test]
    fn every_slot_is_filled_and_shares_are_even() {
        let t = build_table(&hosts(&[1, 1, 1, 1]), SMALL_TABLE);
        for c in shares(&t, 4) {
            assert!(c.abs_diff(SMALL_TABLE / 4) <= 1, "{c}");
        }
    }

    #[test]
    fn weights_set_table_shares() {
        let t = build_table(&hosts(&[1, 2, 4]), SMALL_TABLE);
        let c = shares(&t, 3);
        let unit = SMALL_TABLE as f64 / 7.0;
        for (i, w) in [1.0, 2.0, 4.0].iter().enumerate() {
            assert!((c[i] as f64 - unit * w).abs() < unit * 0.02, "{c:?}");
        }
    }

    #[test]
    fn tables_are_deterministic() {
        let hs = hosts(&[1, 1, 1]);
        assert_eq!(build_table(&hs, 101), build_table(&hs, 101));
        assert_eq!(
            hash_bytes(b"10.0.0.1:9000", 0),
            hash_bytes(b"10.0.0.1:9000", 0)
        );
        assert_ne!(
            hash_bytes(b"10.0.0.1:9000", 0),
            hash_bytes(b"10.0.0.1:9000", 1)
        );
    }
}
