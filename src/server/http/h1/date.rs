//! The `date` of responses, formatted once a second per thread.

use bytes::{BufMut, BytesMut};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// "Sun, 06 Nov 1994 08:49:37 GMT".
const LENGTH: usize = 29;

struct Cached {
    second: u64,
    text: [u8; LENGTH],
}

thread_local! {
    static CACHED: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [b' '; LENGTH] }) };
}

/// Appends the current date, as an HTTP date, to `dst`.
pub(super) fn put(dst: &mut BytesMut) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|cached| {
        if cached.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LENGTH {
                cached.text.copy_from_slice(text.as_bytes());
                cached.second = second;
            }
        }
        dst.put_slice(&cached.text);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_an_http_date_of_now() {
        let mut dst = BytesMut::new();
        put(&mut dst);
        let text = std::str::from_utf8(&dst).unwrap();
        let parsed = httpdate::parse_http_date(text).unwrap();
        let skew = SystemTime::now().duration_since(parsed).unwrap();
        assert!(skew.as_secs() <= 2, "{text}");
        put(&mut dst);
        assert_eq!(dst.len(), 2 * LENGTH);
    }
}
