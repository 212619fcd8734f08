//! The content of an error response that carries a message: a
//! hessian-serialized `com.alipay.remoting.rpc.exception.RpcServerException`,
//! the object Java sofa-bolt and sofa-bolt-node put in every server error
//! (bolt.md §8).
//!
//! The object, in the Hessian 2.0 draft grammar both write
//! ([`crate::hessian2::draft`]):
//!
//! ```text
//! O "com.alipay.remoting.rpc.exception.RpcServerException" 3
//!   "detailMessage" "stackTrace" "cause"              class definition 0
//! o 0                                                 the exception
//!   detailMessage  the message
//!   stackTrace     V t "[java.lang.StackTraceElement" n 1
//!                    O "java.lang.StackTraceElement" 4 "declaringClass"
//!                      "methodName" "fileName" "lineNumber"   definition 1
//!                    o 1 "meshgate.proxy" "reply" "reply.rs" 1
//!                  z
//!   cause          N
//! ```
//!
//! One stack frame, `meshgate.proxy.reply(reply.rs:1)`, says where the
//! error came from: a Java client shows it in the exception's trace, and
//! the vectors `v1_response_status_6_no_processor.bin` and
//! `v1_response_status_4_server_threadpool_busy.bin` (made by
//! sofa-bolt-node with that frame) are this content byte for byte.
//! sofa-rpc-node reads the object back and reports
//! `com.alipay.remoting.rpc.exception.RpcServerException: <message>`;
//! with no content it only says "Server exception when invoke with
//! callback.Please check the server log!".

use crate::hessian2::{NULL, draft, write_int};
use bytes::{BufMut, BytesMut};

/// The exception's class, also written in the response's class field as
/// Java sofa-bolt's `createExceptionResponse` does. (sofa-bolt-node writes
/// `com.alipay.sofa.rpc.core.response.SofaResponse` there, and ignores the
/// field when it reads an error; Java's client picks the content's
/// deserializer by it, and sofa-rpc's one for `SofaResponse` would try to
/// read the exception as a `SofaResponse`.)
pub(super) const CLASS: &str = "com.alipay.remoting.rpc.exception.RpcServerException";

/// The longest message written, in bytes (cut at a character boundary): a
/// client logs it, and a runaway message must not make a runaway frame.
pub(super) const MAX_MESSAGE: usize = 64 * 1024;

/// One `java.lang.StackTraceElement`.
#[derive(Clone, Copy, Debug)]
pub(super) struct StackFrame<'a> {
    pub(super) class: &'a str,
    pub(super) method: &'a str,
    pub(super) file: &'a str,
    pub(super) line: i32,
}

/// The frame the gateway's error replies carry.
pub(super) const GATEWAY_FRAME: StackFrame<'static> = StackFrame {
    class: "meshgate.proxy",
    method: "reply",
    file: "reply.rs",
    line: 1,
};

/// Appends the exception with `message` (cut to [`MAX_MESSAGE`] bytes) and
/// a one-frame stack trace.
pub(super) fn write(dst: &mut BytesMut, message: &str, frame: StackFrame<'_>) {
    draft::write_class_def(dst, CLASS, &["detailMessage", "stackTrace", "cause"]);
    draft::write_object(dst, 0);
    draft::write_string(dst, cut(message, MAX_MESSAGE));
    draft::write_list_begin(dst, "[java.lang.StackTraceElement", 1);
    draft::write_class_def(
        dst,
        "java.lang.StackTraceElement",
        &["declaringClass", "methodName", "fileName", "lineNumber"],
    );
    draft::write_object(dst, 1);
    draft::write_string(dst, frame.class);
    draft::write_string(dst, frame.method);
    draft::write_string(dst, frame.file);
    write_int(dst, frame.line);
    draft::write_list_end(dst);
    dst.put_u8(NULL); // cause
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content of sofa-bolt-node's status 2 response for
    /// `Cannot find service ...`: the same object with the frame its
    /// provider stack had.
    #[test]
    fn writes_sofa_bolt_nodes_server_exception_content() {
        let vector =
            include_bytes!("../../testdata/vectors/bolt/v1_response_hessian2_server_exception.bin");
        let mut content = BytesMut::new();
        write(
            &mut content,
            "RpcServerException: Cannot find service com.alipay.test.EchoService:1.0",
            StackFrame {
                class: "com.alipay.sofa.rpc.server.bolt.BoltServerProcessor",
                method: "handleRequest",
                file: "BoltServerProcessor.java",
                line: 120,
            },
        );
        assert_eq!(&content[..], &vector[66..]);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let s = "é".repeat(5);
        assert_eq!(cut(&s, 5), "éé");
        assert_eq!(cut(&s, 10), s);
        assert_eq!(cut("", 0), "");
    }
}
