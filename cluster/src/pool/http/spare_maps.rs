//! Header maps kept per thread, cleared, for the response heads the
//! HTTP/1 pool parses. The proxy gives back each request's map once its
//! response is on its way, and the gateway's HTTP/1.1 server reuses each
//! response's map for its connection's next request, so in steady state a
//! proxied HTTP/1 request allocates no map at all.

use http::HeaderMap;
use std::cell::RefCell;

/// Maps kept per thread.
const KEEP: usize = 32;
/// A map that grew past this many fields is freed rather than kept.
const LARGEST_KEPT: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `map`, cleared, for a response head parsed on this thread (or
/// frees it, when this thread keeps enough already).
pub fn give_back_header_map(mut map: HeaderMap) {
    let capacity = map.capacity();
    if capacity == 0 || capacity > LARGEST_KEPT {
        return;
    }
    // Its values may hold a read buffer alive: they go now.
    map.clear();
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < KEEP {
            spare.push(map);
        }
    });
}

/// An empty map with room for `fields`: a kept one when this thread has
/// one.
pub(crate) fn header_map(fields: usize) -> HeaderMap {
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_map_given_back_comes_back_empty_with_its_room() {
        let mut map = HeaderMap::with_capacity(8);
        map.insert("x-a", HeaderValue::from_static("1"));
        let capacity = map.capacity();
        give_back_header_map(map);
        let again = header_map(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
        // Nothing kept: a new one.
        assert_eq!(
            header_map(4).capacity(),
            HeaderMap::<HeaderValue>::with_capacity(4).capacity()
        );
    }

    #[test]
    fn the_store_is_bounded() {
        for _ in 0..KEEP * 2 {
            give_back_header_map(HeaderMap::with_capacity(4));
        }
        let kept = SPARE.with_borrow(Vec::len);
        assert_eq!(kept, KEEP);
        give_back_header_map(HeaderMap::with_capacity(LARGEST_KEPT * 4));
        assert_eq!(SPARE.with_borrow(Vec::len), KEEP);
        SPARE.with_borrow_mut(Vec::clear);
    }
}
