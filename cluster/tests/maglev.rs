//! `LB_MAGLEV`: same key, same host; keys spread evenly; a removed or
//! unhealthy host moves about its own share of keys and no more.

mod common;

use common::{cluster, counts, index, near};
use meshgate_cluster::{Cluster, HealthFlag, LbContext};

const KEYS: u64 = 20_000;

fn host_of(c: &Cluster, key: u64) -> usize {
    let cx = LbContext {
        hash_key: Some(key),
        ..LbContext::default()
    };
    index(&c.choose_host(&cx).expect("a host"))
}

fn mapping(c: &Cluster) -> Vec<usize> {
    (0..KEYS).map(|k| host_of(c, k)).collect()
}

#[test]
fn the_same_key_always_reaches_the_same_host() {
    let c = cluster("LB_MAGLEV", 4, &[]);
    let first = mapping(&c);
    assert_eq!(first, mapping(&c));
    // A cluster built again from the same config maps keys the same way
    // (another gateway instance, or this one after a restart).
    assert_eq!(first, mapping(&cluster("LB_MAGLEV", 4, &[])));
}

#[test]
fn keys_spread_evenly() {
    let c = cluster("LB_MAGLEV", 4, &[]);
    let mut n = [0usize; 4];
    for host in mapping(&c) {
        n[host] += 1;
    }
    for count in n {
        assert!(near(count, KEYS as f64 / 4.0, 0.06), "{n:?}");
    }
}

#[test]
fn weights_set_the_share_of_keys() {
    let c = cluster("LB_MAGLEV", 2, &[1, 3]);
    let on_light = mapping(&c).iter().filter(|&&h| h == 0).count();
    assert!(near(on_light, KEYS as f64 / 4.0, 0.08), "{on_light}");
}

#[test]
fn removing_a_host_remaps_about_its_share_only() {
    let before = mapping(&cluster("LB_MAGLEV", 4, &[]));
    // The same hosts without the last one.
    let after = mapping(&cluster("LB_MAGLEV", 3, &[]));
    let mut moved_from_removed = 0;
    let mut moved_from_others = 0;
    for (b, a) in before.iter().zip(&after) {
        match (b, a) {
            (3, _) => moved_from_removed += 1,
            (b, a) if b != a => moved_from_others += 1,
            _ => {}
        }
    }
    // Every key of the removed host moves: about a quarter.
    assert!(near(moved_from_removed, KEYS as f64 / 4.0, 0.06));
    // Maglev trades a little stability for balance: a few other keys may
    // move too (a handful here), far from the 75% a modulo hash would move.
    assert!(
        moved_from_others < KEYS as usize / 100,
        "{moved_from_others} of {KEYS} keys moved between surviving hosts"
    );
}

#[test]
fn an_unhealthy_host_loses_its_keys_and_only_those() {
    let c = cluster("LB_MAGLEV", 4, &[]);
    let before = mapping(&c);
    c.hosts().hosts()[1].set_health_flag(HealthFlag::FailedOutlierCheck);
    let during = mapping(&c);
    for (b, d) in before.iter().zip(&during) {
        if *b == 1 {
            assert_ne!(*d, 1);
        } else {
            assert_eq!(b, d, "a key of a healthy host moved");
        }
    }
    // The stand-in for each key is stable too, and spread over the others.
    assert_eq!(during, mapping(&c));
    let mut stand_ins = [0usize; 4];
    for (b, d) in before.iter().zip(&during) {
        if *b == 1 {
            stand_ins[*d] += 1;
        }
    }
    assert!(
        stand_ins.iter().filter(|&&n| n > 0).count() == 3,
        "{stand_ins:?}"
    );
    c.hosts().hosts()[1].clear_health_flag(HealthFlag::FailedOutlierCheck);
    assert_eq!(before, mapping(&c));
}

#[test]
fn without_a_hash_key_picks_are_random() {
    let c = cluster("LB_MAGLEV", 4, &[]);
    let n = counts(&c, 40_000, &LbContext::default());
    for count in &n {
        assert!(near(*count, 10_000.0, 0.05), "{n:?}");
    }
}
