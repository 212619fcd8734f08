//! `LB_WEIGHTED_ROUNDROBIN`: hosts in turn, each as often as its weight.
//!
//! MOSN runs an EDF scheduler (a heap behind a mutex) on every pick. Since
//! a host set and its weights never change after build, the whole cycle can
//! be computed once instead: the schedule below is the smooth weighted
//! round robin sequence (nginx's), in which a host of weight 3 among weights
//! 1:2:3 appears 3 times per 6 picks, spread out rather than in a burst.
//! Picking is then an atomic counter indexing the schedule: no lock, and
//! exact proportions over every full cycle. Weights are divided by their
//! greatest common divisor first, so the cycle is as short as it can be; it
//! holds at most `128 × hosts` entries (weights are at most 128). With equal
//! weights the schedule is plain rotation.
//!
//! When the scheduled host is not eligible (unhealthy, or already tried by
//! this request), the pick falls back to a weighted random choice among the
//! eligible hosts, which keeps their shares in proportion.

use super::{HostFilter, LbContext, LoadBalancer, weighted_random_accepted};
use crate::host::{Host, HostSet};
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `LB_WEIGHTED_ROUNDROBIN`.
#[derive(Debug)]
pub(crate) struct WeightedRoundRobin {
    hosts: HostSet,
    /// Host indices in smooth-WRR order; one full cycle.
    schedule: Box<[u32]>,
    next: AtomicUsize,
}

impl WeightedRoundRobin {
    pub(crate) fn new(hosts: HostSet) -> WeightedRoundRobin {
        let weights: Vec<u32> = hosts.hosts().iter().map(|h| h.weight()).collect();
        let schedule = smooth_schedule(&weights);
        let start = rand::rng().random_range(0..schedule.len().max(1));
        WeightedRoundRobin {
            hosts,
            schedule,
            next: AtomicUsize::new(start),
        }
    }
}

impl LoadBalancer for WeightedRoundRobin {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, _cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        let hosts = self.hosts.hosts();
        if self.schedule.is_empty() {
            return None;
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len();
        let host = &hosts[self.schedule[slot] as usize];
        if filter.accepts(host) {
            return Some(Arc::clone(host));
        }
        weighted_random_accepted(hosts, filter)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One cycle of smooth weighted round robin over `weights` (each ≥ 1):
/// every step, each host gains its weight in credit, the richest host is
/// picked (the first on ties) and pays the total back.
fn smooth_schedule(weights: &[u32]) -> Box<[u32]> {
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let reduced: Vec<i64> = weights.iter().map(|&w| i64::from(w / g)).collect();
    let total: i64 = reduced.iter().sum();
    let mut credit = vec![0i64; reduced.len()];
    let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in reduced.iter().enumerate() {
            credit[i] += w;
            if credit[i] > credit[best] {
                best = i;
            }
        }
        credit[best] -= total;
        // Host counts come from a Vec; they fit in u32 on any real config.
        schedule.push(u32::try_from(best).unwrap_or(u32::MAX));
    }
    schedule.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_smooth_and_exact() {
        assert_eq!(&*smooth_schedule(&[1, 2, 3]), &[2, 1, 0, 2, 1, 2]);
        assert_eq!(&*smooth_schedule(&[5, 1, 1]), &[0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn weights_are_reduced_by_their_gcd() {
        assert_eq!(smooth_schedule(&[20, 40, 60]).len(), 6);
        assert_eq!(&*smooth_schedule(&[7, 7, 7]), &[0, 1, 2]);
    }

    #[test]
    fn counts_match_weights_for_awkward_weights() {
        let weights = [128, 1, 77, 3];
        let s = smooth_schedule(&weights);
        for (i, w) in weights.iter().enumerate() {
            let n = s.iter().filter(|&&x| x as usize == i).count();
            assert_eq!(n, *w as usize);
        }
    }
}
