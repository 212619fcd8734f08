#![no_main]
//! The hessian2 reader behind Dubbo routing on its own: request head,
//! argument skipping and attachments over arbitrary bodies. Never panics,
//! never recurses without bound, and every span it returns lies inside the
//! body.

use libfuzzer_sys::fuzz_target;
use meshgate_codecs::dubbo::hessian::read_request_head;

fuzz_target!(|body: &[u8]| {
    if let Ok(request) = read_request_head(body) {
        let head = &request.head;
        for span in [&head.dubbo, &head.service, &head.version, &head.method, &head.descriptor]
            .into_iter()
            .flatten()
        {
            assert!(span.range.end <= body.len(), "span outside the body");
        }
        assert!(request.attachments.range.end <= body.len(), "attachments outside the body");
    }
});
