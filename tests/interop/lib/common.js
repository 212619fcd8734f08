'use strict';
// Shared by the interop scripts: argument parsing, the READY line, SIGTERM
// handling, a quiet logger, random payloads and the bounded call loop whose
// JSON summary the Rust side (meshgate-test-support's `process` module) parses.

const crypto = require('crypto');

/** Parses `--key value` / `--flag` arguments against a table of defaults.
 *  Unknown options and bad numbers are usage errors (exit 2). */
function parseArgs(argv, defaults, usage) {
  const opts = Object.assign({}, defaults);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage + '\n');
      process.exit(0);
    }
    if (!arg.startsWith('--')) usageError(usage, 'unexpected argument ' + JSON.stringify(arg));
    let key = arg.slice(2);
    let value;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      value = key.slice(eq + 1);
      key = key.slice(0, eq);
    }
    const name = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(name in defaults)) usageError(usage, 'unknown option --' + key);
    if (typeof defaults[name] === 'boolean') {
      opts[name] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) usageError(usage, '--' + key + ' needs a value');
      value = argv[++i];
    }
    if (typeof defaults[name] === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) usageError(usage, '--' + key + ' needs a number, got ' + JSON.stringify(value));
      opts[name] = n;
    } else {
      opts[name] = value;
    }
  }
  return opts;
}

function usageError(usage, msg) {
  process.stderr.write('error: ' + msg + '\n' + usage + '\n');
  process.exit(2);
}

/** `host:port` → { host, port }; only loopback targets are accepted. */
function parseTarget(target, usage) {
  const m = /^(.+):(\d+)$/.exec(target || '');
  if (!m) usageError(usage, '--target must be HOST:PORT, got ' + JSON.stringify(target));
  const host = m[1];
  if (!isLoopback(host)) usageError(usage, '--target must be a loopback address (127.0.0.0/8, localhost, ::1), got ' + host);
  return { host, port: Number(m[2]) };
}

function isLoopback(host) {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A logger for the libraries: warnings and errors to stderr, info/debug only
 *  with INTEROP_VERBOSE=1 (the libraries are chatty). */
function quietLogger(tag) {
  const verbose = process.env.INTEROP_VERBOSE === '1';
  const util = require('util');
  const write = (level, args) => process.stderr.write(`[${tag}] ${level} ${util.format(...args)}\n`);
  return {
    debug: (...a) => { if (verbose) write('DEBUG', a); },
    info: (...a) => { if (verbose) write('INFO', a); },
    warn: (...a) => write('WARN', a),
    error: (...a) => write('ERROR', a),
  };
}

/** Prints the one machine-readable line the test harness waits for. */
function printReady(fields) {
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
  process.stdout.write('READY ' + parts.join(' ') + '\n');
}

/** Exits cleanly on SIGTERM / SIGINT: runs `close`, exits 0, or 1 when close
 *  fails or takes longer than `graceMs`. */
function onTerminate(close, graceMs = 2000) {
  let closing = false;
  const handler = signal => {
    if (closing) return;
    closing = true;
    process.stderr.write(`received ${signal}, closing\n`);
    const timer = setTimeout(() => {
      process.stderr.write('close took longer than ' + graceMs + 'ms, exiting anyway\n');
      process.exit(1);
    }, graceMs);
    timer.unref();
    Promise.resolve()
      .then(close)
      .then(() => process.exit(0), err => {
        process.stderr.write('close failed: ' + (err && err.stack || err) + '\n');
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ ';
// Basic-multilingual-plane characters only: one UTF-16 unit each, so hessian's
// character counts and every library's string code agree (see README).
const UNICODE = ASCII + 'éüß€中文字节ÄÖ';

/** A random string of 1..maxLen characters (`charset` 'ascii' or 'unicode'),
 *  prefixed with the call number so a crossed reply is easy to spot. */
function randomPayload(seq, maxLen, charset) {
  const alphabet = charset === 'unicode' ? UNICODE : ASCII;
  const len = 1 + crypto.randomInt(Math.max(1, maxLen));
  let s = `#${seq}:`;
  const chars = Array.from(alphabet);
  for (let i = 0; i < len; i++) s += chars[crypto.randomInt(chars.length)];
  return s;
}

/** Describes an error the way the summary reports it. */
function describeError(err) {
  if (!err || typeof err !== 'object') return { name: 'NonError', message: String(err) };
  const out = { name: err.name || 'Error', message: String(err.message || '') };
  if (err.code !== undefined) out.code = err.code;
  if (err.resultCode !== undefined) out.resultCode = err.resultCode;
  return out;
}

/**
 * Runs `calls` calls with `concurrency` workers. `callOnce(seq)` returns
 * { expected, got } (or throws). Stops starting new calls at `deadlineMs`;
 * calls never started then count as failed ("not started: deadline").
 * Resolves to the summary object.
 */
let current = null;

async function runCalls({ calls, concurrency, deadlineMs, callOnce, maxErrors = 5 }) {
  const started = Date.now();
  const summary = { ok: 0, failed: 0, mismatched: 0, not_started: 0, calls, concurrency, elapsed_ms: 0, errors: [] };
  current = { summary, started };
  const record = e => { if (summary.errors.length < maxErrors) summary.errors.push(e); };
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (next >= calls) return;
      if (Date.now() - started > deadlineMs) return;
      const seq = next++;
      try {
        const { expected, got, extra } = await callOnce(seq);
        if (got === expected) {
          summary.ok++;
          if (extra) extra(summary);
        } else {
          summary.mismatched++;
          record({ seq, kind: 'mismatch', expected: clip(expected), got: clip(got) });
        }
      } catch (err) {
        summary.failed++;
        record(Object.assign({ seq, kind: 'error' }, describeError(err)));
      }
    }
  };
  const workers = [];
  for (let i = 0; i < Math.max(1, Math.min(concurrency, calls)); i++) workers.push(worker());
  await Promise.all(workers);
  summary.not_started = calls - summary.ok - summary.failed - summary.mismatched;
  if (summary.not_started > 0) {
    summary.failed += summary.not_started;
    record({ kind: 'deadline', name: 'Deadline', message: `${summary.not_started} calls not started within ${deadlineMs}ms` });
  }
  summary.elapsed_ms = Date.now() - started;
  return summary;
}

function clip(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s !== undefined && s.length > 200 ? s.slice(0, 200) + '…' : s;
}

/** Prints the summary as one JSON line and exits 0 only when every call was ok. */
function finish(summary) {
  process.stdout.write(JSON.stringify(summary) + '\n');
  const good = summary.ok === summary.calls && summary.failed === 0 && summary.mismatched === 0;
  process.exit(good ? 0 : 1);
}

/** A hard stop: whatever happens, the process ends by `ms` with exit 3,
 *  printing the counts so far (calls still in flight count as failed). */
function hardDeadline(ms, what) {
  const t = setTimeout(() => {
    const summary = current ? current.summary : { ok: 0, failed: 0, mismatched: 0, calls: 0, errors: [] };
    const done = summary.ok + summary.failed + summary.mismatched;
    summary.failed += Math.max(0, summary.calls - done);
    summary.hard_deadline = true;
    summary.elapsed_ms = current ? Date.now() - current.started : 0;
    summary.errors.push({ kind: 'deadline', name: 'HardDeadline', message: `${what} did not finish within ${ms}ms` });
    process.stdout.write(JSON.stringify(summary) + '\n');
    process.exit(3);
  }, ms);
  t.unref();
}

module.exports = {
  parseArgs,
  usageError,
  parseTarget,
  isLoopback,
  quietLogger,
  printReady,
  onTerminate,
  randomPayload,
  describeError,
  runCalls,
  finish,
  hardDeadline,
};
