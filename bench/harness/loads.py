"""The load generators, run on the load CPU: mg-load (bolt, Dubbo), wrk
(HTTP/1) and h2load (h2c, gRPC unary). Each returns the same figures."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The load each generator puts on, the same for every target.
MG_CONNECTIONS, MG_IN_FLIGHT = 16, 8  # bolt, Dubbo: 128 requests in flight
WRK_CONNECTIONS = 64  # HTTP/1: 64 in flight
H2_CONNECTIONS, H2_STREAMS = 8, 16  # h2c, gRPC: 128 in flight


@dataclass
class LoadResult:
    """What one measured run of a load generator saw."""

    requests: int  # answered correctly
    errors: int  # failed, mismatched, non-2xx, timed out
    seconds: float
    p50_us: float
    p99_us: float
    p999_us: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _run(argv: list[str], timeout: float) -> str:
    done = subprocess.run(
        ["taskset", "-c", "1", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 and not done.stdout.strip():
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return done.stdout


def mg_load(bin_dir: Path, protocol: str, port: int, seconds: float) -> LoadResult:
    """mg-load's closed loop, every reply checked against its request
    (Dubbo replies are RpcResults: Envoy's dubbo_proxy parses them)."""
    out = _run(
        [
            str(bin_dir / "mg-load"),
            "--protocol", protocol,
            "--target", f"127.0.0.1:{port}",
            "--connections", str(MG_CONNECTIONS),
            "--in-flight", str(MG_IN_FLIGHT),
            "--warmup", "0s",
            "--duration", f"{seconds}s",
            "--timeout", "5s",
            "--json",
        ]
        + (["--dubbo-rpc-result"] if protocol == "dubbo" else []),
        timeout=seconds + 30,
    )
    report = json.loads(out.strip().splitlines()[-1])
    return LoadResult(
        requests=report["ok"],
        errors=report["errors"] + report["mismatched"],
        seconds=report["seconds"],
        p50_us=report["p50_us"],
        p99_us=report["p99_us"],
        p999_us=report["p999_us"],
    )


def wrk(port: int, seconds: float, script: Path) -> LoadResult:
    """wrk, one thread, keep-alive GETs."""
    out = _run(
        [
            "wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}/",
        ],
        timeout=seconds + 30,
    )
    line = next(l for l in out.splitlines() if l.startswith('{"requests"'))
    report = json.loads(line)
    errors = sum(report[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        requests=report["requests"] - report["status_errors"],
        errors=errors,
        seconds=report["duration_us"] / 1e6,
        p50_us=report["p50_us"],
        p99_us=report["p99_us"],
        p999_us=report["p999_us"],
    )


def grpc_message(work: Path) -> Path:
    """A gRPC unary request body: the 5-byte length prefix and a protobuf
    message (field 1, a 64-byte string), written to a file for h2load."""
    payload = b"x" * 64
    message = bytes([0x0A, len(payload)]) + payload
    path = work / "grpc-request.bin"
    path.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def h2load(port: int, seconds: float, work: Path, grpc: bool) -> LoadResult:
    """h2load over h2c (prior knowledge), 8 connections x 16 streams; a
    gRPC run POSTs a unary message with gRPC's headers. Percentiles come
    from h2load's per-request log (its summary has none)."""
    log = work / "h2load-requests.log"
    log.unlink(missing_ok=True)
    argv = [
        "h2load", "-t1", f"-c{H2_CONNECTIONS}", f"-m{H2_STREAMS}",
        f"-D{max(1, round(seconds))}", "--log-file", str(log),
    ]
    if grpc:
        argv += [
            "-d", str(grpc_message(work)),
            "-H", "content-type: application/grpc",
            "-H", "te: trailers",
        ]
    argv.append(f"http://127.0.0.1:{port}/bench.Echo/Unary" if grpc else f"http://127.0.0.1:{port}/")
    out = _run(argv, timeout=seconds + 30)
    requests = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    finished = re.search(r"finished in ([\d.]+)s", out)
    if not requests or not finished:
        raise RuntimeError(f"h2load output not understood: {out[-400:]}")
    durations = []
    with open(log) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1].startswith("2"):
                durations.append(int(parts[2]))
    durations.sort()
    succeeded = int(requests.group(4))
    return LoadResult(
        requests=succeeded,
        errors=int(requests.group(5)) + int(requests.group(6)) + int(requests.group(7)),
        seconds=float(finished.group(1)),
        p50_us=_percentile(durations, 0.5),
        p99_us=_percentile(durations, 0.99),
        p999_us=_percentile(durations, 0.999),
    )
