//! Futures run inside one task.
//!
//! A connection's requests (or streams) are served inside the connection's
//! own task rather than a task each: a spawn per request cost an
//! allocation, the runtime's scheduling and cross-task wakes on top of the
//! request itself, as Envoy and MOSN serve a connection on its worker.
//!
//! - [`FutureSet`]: futures polled together, whose finished futures'
//!   memory (box and waker) is reused, so a busy connection allocates
//!   nothing per request.
//! - [`LocalExecutor`] and [`LocalTasks`]: an executor for hyper that
//!   queues the futures hyper would spawn (a server's HTTP/2 streams, a
//!   client's per-request response tasks) for the task that polls the
//!   connection.

mod local;
mod set;

pub use local::{LocalExecutor, LocalTasks};
pub use set::FutureSet;
