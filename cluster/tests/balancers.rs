//! Each load balancer judged by the distribution it produces, and how every
//! one of them treats hosts already tried and hosts marked unhealthy.

mod common;

use common::{cluster, counts, index, near};
use meshgate_cluster::{HealthFlag, LbContext, LbType};
use std::sync::Arc;
use std::sync::atomic::Ordering;

const PICKS: usize = 10_000;

#[test]
fn round_robin_rotates_exactly() {
    let c = cluster("LB_ROUNDROBIN", 4, &[1, 5, 1, 1]);
    let cx = LbContext::default();
    let order: Vec<usize> = (0..PICKS)
        .map(|_| index(&c.choose_host(&cx).unwrap()))
        .collect();
    for pair in order.windows(2) {
        assert_eq!(pair[1], (pair[0] + 1) % 4, "weights are ignored");
    }
    assert_eq!(counts(&c, PICKS, &cx), [2500; 4]);
}

#[test]
fn weighted_round_robin_keeps_exact_proportions() {
    let c = cluster("LB_WEIGHTED_ROUNDROBIN", 3, &[1, 2, 3]);
    let cx = LbContext::default();
    let order: Vec<usize> = (0..6_000)
        .map(|_| index(&c.choose_host(&cx).unwrap()))
        .collect();
    let mut total = [0; 3];
    for &i in &order {
        total[i] += 1;
    }
    assert_eq!(total, [1000, 2000, 3000]);
    // Smooth: every full cycle of 6 picks already has the 1:2:3 split.
    for cycle in order.chunks(6) {
        let mut n = [0; 3];
        for &i in cycle {
            n[i] += 1;
        }
        assert_eq!(n, [1, 2, 3], "{cycle:?}");
    }
}

#[test]
fn weighted_round_robin_with_equal_weights_is_round_robin() {
    let c = cluster("LB_WEIGHTED_ROUNDROBIN", 4, &[3, 3, 3, 3]);
    assert_eq!(counts(&c, PICKS, &LbContext::default()), [2500; 4]);
}

#[test]
fn random_is_uniform_within_tolerance() {
    let c = cluster("LB_RANDOM", 4, &[1, 10, 1, 1]);
    let n = counts(&c, 4 * PICKS, &LbContext::default());
    for count in &n {
        // ±5% is more than 5 standard deviations at 10,000 expected.
        assert!(near(*count, PICKS as f64, 0.05), "{n:?}");
    }
}

#[test]
fn least_request_prefers_the_host_with_fewer_active_requests() {
    let c = cluster("LB_LEAST_REQUEST", 4, &[]);
    for (i, h) in c.hosts().hosts().iter().enumerate() {
        let load = if i == 1 { 0 } else { 10 };
        h.stats().active_requests.store(load, Ordering::Relaxed);
    }
    let n = counts(&c, PICKS, &LbContext::default());
    // Two draws with replacement: the idle host wins whenever it is drawn,
    // 1 - (3/4)^2 = 7/16 of the time; the others split the rest.
    assert!(near(n[1], PICKS as f64 * 7.0 / 16.0, 0.08), "{n:?}");
    for i in [0, 2, 3] {
        assert!(near(n[i], PICKS as f64 * 3.0 / 16.0, 0.12), "{n:?}");
    }
}

#[test]
fn least_request_spreads_evenly_over_equal_loads() {
    let c = cluster("LB_LEAST_REQUEST", 4, &[]);
    let n = counts(&c, 4 * PICKS, &LbContext::default());
    for count in &n {
        assert!(near(*count, PICKS as f64, 0.05), "{n:?}");
    }
}

#[test]
fn least_connection_prefers_the_host_with_fewer_connections() {
    let c = cluster("LB_LEAST_CONNECTION", 3, &[]);
    let hosts = c.hosts().hosts();
    hosts[0]
        .stats()
        .active_connections
        .store(4, Ordering::Relaxed);
    hosts[1]
        .stats()
        .active_connections
        .store(1, Ordering::Relaxed);
    hosts[2]
        .stats()
        .active_connections
        .store(8, Ordering::Relaxed);
    // Active requests are not what this balancer reads.
    hosts[1]
        .stats()
        .active_requests
        .store(1_000, Ordering::Relaxed);
    let n = counts(&c, 4 * PICKS, &LbContext::default());
    // Host 1 wins when drawn (5/9), host 0 when drawn without host 1 (3/9),
    // host 2 only when drawn twice (1/9).
    let expected = [3.0 / 9.0, 5.0 / 9.0, 1.0 / 9.0];
    for (i, e) in expected.iter().enumerate() {
        assert!(near(n[i], 4.0 * PICKS as f64 * e, 0.1), "{n:?}");
    }
}

#[test]
fn request_round_robin_starts_each_request_at_the_first_host() {
    let c = cluster("LB_REQUEST_ROUNDROBIN", 3, &[]);
    assert_eq!(counts(&c, 100, &LbContext::default()), [100, 0, 0]);
    let mut tried = Vec::new();
    for expected in 0..3 {
        let cx = LbContext {
            tried: &tried,
            ..LbContext::default()
        };
        let h = c.choose_host(&cx).unwrap();
        assert_eq!(index(&h), expected);
        tried.push(h);
    }
}

#[test]
fn every_balancer_avoids_tried_hosts_while_others_are_left() {
    for lb in LbType::ALL {
        let c = cluster(lb.mosn_name(), 4, &[1, 2, 3, 4]);
        let hosts = c.hosts().hosts();
        let tried = [Arc::clone(&hosts[0]), Arc::clone(&hosts[2])];
        let cx = LbContext {
            hash_key: Some(42),
            tried: &tried,
            ..LbContext::default()
        };
        for key in 0..2_000u64 {
            let cx = LbContext {
                hash_key: Some(key),
                ..cx
            };
            let i = index(&c.choose_host(&cx).unwrap());
            assert!(i == 1 || i == 3, "{lb}: picked tried host {i}");
        }
        // When every host was tried, a retry still gets one.
        let all: Vec<_> = hosts.to_vec();
        let cx = LbContext { tried: &all, ..cx };
        assert!(c.choose_host(&cx).is_some(), "{lb}");
    }
}

#[test]
fn every_balancer_skips_unhealthy_hosts() {
    for lb in LbType::ALL {
        let c = cluster(lb.mosn_name(), 4, &[1, 2, 3, 4]);
        let hosts = c.hosts().hosts();
        hosts[1].set_health_flag(HealthFlag::FailedActiveCheck);
        hosts[3].set_health_flag(HealthFlag::FailedOutlierCheck);
        let mut seen = [0; 4];
        for key in 0..2_000u64 {
            let cx = LbContext {
                hash_key: Some(key),
                ..LbContext::default()
            };
            seen[index(&c.choose_host(&cx).unwrap())] += 1;
        }
        assert_eq!((seen[1], seen[3]), (0, 0), "{lb}: {seen:?}");
        if lb != LbType::RequestRoundRobin {
            assert!(seen[0] > 0 && seen[2] > 0, "{lb}: {seen:?}");
        }
        // Healthy again: back in rotation.
        hosts[1].clear_health_flag(HealthFlag::FailedActiveCheck);
        let back = (0..2_000u64).any(|key| {
            let cx = LbContext {
                hash_key: Some(key),
                ..LbContext::default()
            };
            index(&c.choose_host(&cx).unwrap()) == 1
        });
        assert!(back || lb == LbType::RequestRoundRobin, "{lb}");
    }
}

#[test]
fn with_no_healthy_host_every_balancer_uses_all_hosts() {
    for lb in LbType::ALL {
        let c = cluster(lb.mosn_name(), 3, &[]);
        for h in c.hosts().hosts() {
            h.set_health_flag(HealthFlag::FailedActiveCheck);
        }
        let mut seen = [0; 3];
        for key in 0..3_000u64 {
            let cx = LbContext {
                hash_key: Some(key),
                ..LbContext::default()
            };
            seen[index(&c.choose_host(&cx).unwrap())] += 1;
        }
        if lb != LbType::RequestRoundRobin {
            assert!(seen.iter().all(|&n| n > 500), "{lb}: {seen:?}");
        }
        // Panic mode still avoids what was tried.
        let tried = [Arc::clone(&c.hosts().hosts()[0])];
        let cx = LbContext {
            hash_key: Some(1),
            tried: &tried,
            ..LbContext::default()
        };
        assert_ne!(index(&c.choose_host(&cx).unwrap()), 0, "{lb}");
    }
}

#[test]
fn round_robin_rotation_stays_exact_over_the_healthy_hosts() {
    let c = cluster("LB_ROUNDROBIN", 4, &[]);
    c.hosts().hosts()[2].set_health_flag(HealthFlag::FailedActiveCheck);
    assert_eq!(
        counts(&c, 3_000, &LbContext::default()),
        [1000, 1000, 0, 1000]
    );
}

#[test]
fn weighted_round_robin_keeps_weights_among_the_healthy_hosts() {
    let c = cluster("LB_WEIGHTED_ROUNDROBIN", 3, &[1, 2, 3]);
    c.hosts().hosts()[2].set_health_flag(HealthFlag::FailedActiveCheck);
    let n = counts(&c, 30_000, &LbContext::default());
    assert_eq!(n[2], 0);
    assert!(
        near(n[0], 10_000.0, 0.05) && near(n[1], 20_000.0, 0.05),
        "{n:?}"
    );
}

#[test]
fn concurrent_picks_keep_round_robin_counts_exact() {
    let c = cluster("LB_ROUNDROBIN", 4, &[]);
    let per_thread = 2_500;
    let counts: Vec<Vec<usize>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| counts(&c, per_thread, &LbContext::default())))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let total: Vec<usize> = (0..4).map(|i| counts.iter().map(|c| c[i]).sum()).collect();
    // No lock, yet no pick is lost or doubled: one atomic counter.
    assert_eq!(total, [2500; 4]);
}
