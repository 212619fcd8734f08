#!/usr/bin/env python3
"""A real Dubbo consumer in Python: dubbo-ssl-python's DubboClient with a
direct host (no ZooKeeper). Same CLI and JSON summary as bolt_client.js /
dubbo_client.js; `python dubbo_client.py --help` for the options.

dubbo-ssl-python is blocking (one call per thread, a shared reader thread),
so CONCURRENCY is a thread pool. Its limits (see README.md): strings are
written with a 16-bit length and no chunking, and counted in code points, so
payloads stay short and in the basic multilingual plane; replies must use
result flags 0/1/2 (no *_WITH_ATTACHMENTS).
"""

import argparse
import json
import logging
import os
import random
import string
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ASCII = string.ascii_letters + string.digits + "-_.:/ "
UNICODE = ASCII + "éüß€中文字节ÄÖ"
MAX_ERRORS = 5


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="dubbo_client.py",
        description="Calls sayHello(name) CALLS times with random names and checks every "
        "reply is 'hello ' + name. Prints one JSON line {ok, failed, mismatched, "
        "not_started, calls, elapsed_ms, errors: [first 5], by_reply?}; exits 0 only "
        "when every call was ok.",
    )
    p.add_argument("--target", required=True, help="127.0.0.1:PORT (loopback only)")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout-ms", type=int, default=3000, help="reply timeout of one call")
    p.add_argument("--deadline-ms", type=int, default=60000, help="no call starts after this")
    p.add_argument("--max-len", type=int, default=64, help="payload length 1..MAX_LEN (≤ 1000)")
    p.add_argument("--charset", choices=["ascii", "unicode"], default="ascii")
    p.add_argument("--mode", choices=["echo", "whoami"], default="echo")
    p.add_argument("--service", default="org.apache.dubbo.samples.DemoService")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--group", default="")
    p.add_argument("--method", default="sayHello")
    p.add_argument("--dubbo-version", default="2.0.2", help="the protocol version sent in the head")
    args = p.parse_args(argv)
    host, sep, port = args.target.rpartition(":")
    if not sep or not port.isdigit():
        p.error("--target must be HOST:PORT")
    if not (host == "localhost" or host == "::1" or host.startswith("127.")):
        p.error("--target must be a loopback address, got " + host)
    if host == "localhost":
        host = "127.0.0.1"  # dubbo-ssl-python connects over AF_INET only
    args.host = "{}:{}".format(host, port)
    if not 1 <= args.calls <= 10_000_000:
        p.error("--calls must be 1..10000000")
    if not 1 <= args.concurrency <= 1000:
        p.error("--concurrency must be 1..1000")
    if args.timeout_ms < 1:
        p.error("--timeout-ms must be positive")
    if not 1 <= args.max_len <= 1000:
        p.error("--max-len must be 1..1000 (dubbo-ssl-python cannot read chunked strings)")
    return args


def random_payload(seq, max_len, charset):
    alphabet = UNICODE if charset == "unicode" else ASCII
    n = 1 + random.randrange(max_len)
    return "#{}:".format(seq) + "".join(random.choice(alphabet) for _ in range(n))


def clip(v):
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= 200 else s[:200] + "…"


def describe_error(err):
    # dubbo-ssl-python puts "\n" in front of server error messages; keep the
    # message as the library reports it, but strip the framing whitespace.
    return {"name": type(err).__name__, "message": str(err).strip()}


class Summary:
    def __init__(self, calls, concurrency):
        self.lock = threading.Lock()
        self.data = {
            "ok": 0,
            "failed": 0,
            "mismatched": 0,
            "not_started": 0,
            "calls": calls,
            "concurrency": concurrency,
            "elapsed_ms": 0,
            "errors": [],
        }
        self.by_reply = {}

    def record(self, key, err=None):
        with self.lock:
            self.data[key] += 1
            if err is not None and len(self.data["errors"]) < MAX_ERRORS:
                self.data["errors"].append(err)


def hard_deadline(seconds, summary, started):
    """Whatever happens, the process ends by `seconds` (exit 3)."""

    def fire():
        with summary.lock:
            d = summary.data
            done = d["ok"] + d["failed"] + d["mismatched"]
            d["failed"] += max(0, d["calls"] - done)
            d["hard_deadline"] = True
            d["elapsed_ms"] = int((time.monotonic() - started) * 1000)
            d["errors"].append(
                {"kind": "deadline", "name": "HardDeadline", "message": "dubbo_client.py did not finish within {}s".format(seconds)}
            )
            sys.stdout.write(json.dumps(d) + "\n")
            sys.stdout.flush()
        os._exit(3)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def main(argv):
    args = parse_args(argv)
    # The library logs every server error with a traceback at ERROR level.
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("INTEROP_VERBOSE") == "1" else logging.CRITICAL,
        stream=sys.stderr,
    )
    from dubbo_ssl.client import DubboClient

    started = time.monotonic()
    summary = Summary(args.calls, args.concurrency)
    hard_deadline((args.deadline_ms + args.timeout_ms + 5000) / 1000.0, summary, started)

    client = DubboClient(
        interface=args.service,
        group=args.group,
        version=args.version,
        dubbo_version=args.dubbo_version,
        host=args.host,
        verify=None,
    )
    timeout_s = args.timeout_ms / 1000.0
    deadline = started + args.deadline_ms / 1000.0
    seq_lock = threading.Lock()
    next_seq = [0]

    def take_seq():
        with seq_lock:
            if next_seq[0] >= args.calls or time.monotonic() > deadline:
                return None
            s = next_seq[0]
            next_seq[0] += 1
            return s

    def one_call(seq):
        if args.mode == "whoami":
            got = client.call("whoami", [], timeout=timeout_s)
            if isinstance(got, str) and got:
                with summary.lock:
                    summary.by_reply[got] = summary.by_reply.get(got, 0) + 1
                return got, got
            return "a non-empty server name", got
        payload = random_payload(seq, args.max_len, args.charset)
        got = client.call(args.method, [payload], timeout=timeout_s)
        return "hello " + payload, got

    def worker():
        while True:
            seq = take_seq()
            if seq is None:
                return
            try:
                expected, got = one_call(seq)
            except Exception as err:  # every library error is a failed call
                summary.record("failed", dict(seq=seq, kind="error", **describe_error(err)))
                continue
            if got == expected:
                summary.record("ok")
            else:
                summary.record("mismatched", {"seq": seq, "kind": "mismatch", "expected": clip(expected), "got": clip(got)})

    workers = max(1, min(args.concurrency, args.calls))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(worker) for _ in range(workers)]
            for f in futures:
                f.result()
    except Exception as err:  # a failure outside a call (connect refused etc.)
        summary.record("failed", dict(kind="setup", **describe_error(err)))

    with summary.lock:
        d = summary.data
        done = d["ok"] + d["failed"] + d["mismatched"]
        d["not_started"] = max(0, args.calls - done)
        if d["not_started"]:
            d["failed"] += d["not_started"]
            d["errors"].append(
                {"kind": "deadline", "name": "Deadline", "message": "{} calls not started within {}ms".format(d["not_started"], args.deadline_ms)}
            )
        d["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        d["protocol"] = "dubbo"
        d["library"] = "dubbo-ssl-python"
        if args.mode == "whoami":
            d["by_reply"] = summary.by_reply
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()
        good = d["ok"] == args.calls and d["failed"] == 0 and d["mismatched"] == 0
    # The library's reader and heartbeat threads never end: leave at once.
    os._exit(0 if good else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
