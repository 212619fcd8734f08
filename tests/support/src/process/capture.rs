//! Captured stdout/stderr of a child process, filled by reader tasks while it runs.

use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Past this many bytes per stream, further output is counted but not kept.
const KEEP_BYTES: usize = 4 << 20;
/// How much of each stream an error message shows (the tail).
const SHOW_BYTES: usize = 8 << 10;

#[derive(Debug, Default)]
struct Streams {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    dropped: usize,
}

/// What a child wrote so far. Cheap to clone; every clone sees the same bytes.
#[derive(Debug, Clone, Default)]
pub struct Output(Arc<Mutex<Streams>>);

#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Output {
    /// Everything the child wrote to stdout (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.lock().stdout).into_owned()
    }

    /// Everything the child wrote to stderr (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.lock().stderr).into_owned()
    }

    /// Both streams for an error message: the last few KiB of each, labelled.
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        for (label, bytes) in [("stdout", &s.stdout), ("stderr", &s.stderr)] {
            let start = bytes.len().saturating_sub(SHOW_BYTES);
            let cut = if start > 0 { " (last 8 KiB)" } else { "" };
            out.push_str(&format!("--- {label}{cut} ---\n"));
            out.push_str(&String::from_utf8_lossy(&bytes[start..]));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        if s.dropped > 0 {
            out.push_str(&format!("({} more bytes were not kept)\n", s.dropped));
        }
        out.push_str("--- end ---");
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, which: Stream, line: &[u8]) {
        let mut s = self.lock();
        let buf = match which {
            Stream::Stdout => &mut s.stdout,
            Stream::Stderr => &mut s.stderr,
        };
        if buf.len() + line.len() > KEEP_BYTES {
            s.dropped += line.len();
        } else {
            buf.extend_from_slice(line);
        }
    }

    /// Reads `reader` line by line into this output until EOF. With `ready`,
    /// the first stdout line starting with `READY` is also sent there
    /// (without its line ending).
    pub(crate) fn spawn_reader<R>(
        &self,
        reader: R,
        which: Stream,
        mut ready: Option<oneshot::Sender<String>>,
    ) -> JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let output = self.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                output.push(which, &line);
                if line.starts_with(b"READY")
                    && let Some(tx) = ready.take()
                {
                    let text = String::from_utf8_lossy(&line);
                    // The receiver may be gone (start gave up); nothing to do then.
                    let _ = tx.send(text.trim_end().to_owned());
                }
            }
        })
    }
}
