"""The benchmark harness behind bench/run.sh: the same closed-loop load
against the backend directly, meshgate, Envoy and nginx, each proxy pinned
to CPU 0 (one worker), load generator and backends pinned to CPU 1.

Per scenario and target: req/s, p50/p99/p999, ratio to direct, the proxy's
CPU time per request (utime+stime over the measured run / requests), peak
RSS. Plus: RSS per idle downstream connection (10,000 held), and startup
time to the first accepted connection. Writes results.md, results.json and
results.png to the output directory."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import configs
import loads
import report
from procs import Procs, Started, cpu_seconds, free_port, memory_kib, wait_port

PROXY_CPU, LOAD_CPU = "0", "1"
SCENARIOS = ["bolt", "dubbo", "http1", "h2c", "grpc", "memory", "startup"]
IDLE_CONNECTIONS = 10_000
STARTUP_RUNS = 5
HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """One scenario x target figure set (or why it was skipped)."""

    scenario: str
    target: str
    rps: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    p999_us: float | None = None
    ratio: float | None = None
    cpu_us_per_req: float | None = None
    peak_rss_kib: int | None = None
    requests: int | None = None
    errors: int | None = None
    skipped: str | None = None
    extra: dict = field(default_factory=dict)


class Harness:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.bin = Path(args.bin_dir)
        self.procs = Procs(work)
        self.envoy = args.envoy
        self.rows: list[Row] = []
        self.backends: dict[str, int] = {}

    def say(self, text: str) -> None:
        print(text, flush=True)

    # --- starting things -------------------------------------------------

    def backend(self, protocol: str) -> int:
        """The stub backend for `protocol` (one per protocol, on CPU 1)."""
        if protocol not in self.backends:
            started = self.procs.start(
                f"stub-{protocol}",
                [str(self.bin / "mg-stub"), "--protocol", protocol, "--listen", "127.0.0.1:0"]
                + (["--dubbo-rpc-result"] if protocol == "dubbo" else []),
                LOAD_CPU,
            )
            match = self.procs.wait_line(started, r"READY port=(\d+)", 10)
            if not match:
                raise RuntimeError(f"mg-stub {protocol} did not start: {started.log.read_text()[-400:]}")
            self.backends[protocol] = int(match.group(1))
        return self.backends[protocol]

    def start_proxy(self, kind: str, mode: str, backend: int, tag: str) -> tuple[Started | None, int, str]:
        """Starts one proxy on CPU 0; returns it, its port and, if it could
        not start, why (the proxy is then None)."""
        port = free_port()
        name = f"{kind}-{tag}"
        if kind == "meshgate":
            path = self.work / f"{name}.json"
            path.write_text(configs.meshgate(port, backend, mode))
            argv = [str(self.bin / "meshgate"), "start", "-c", str(path)]
        elif kind == "envoy":
            if not self.envoy:
                return None, port, self.args.envoy_missing
            path = self.work / f"{name}.yaml"
            path.write_text(configs.envoy(port, backend, mode))
            argv = [
                self.envoy, "-c", str(path), "--concurrency", "1", "--disable-hot-restart",
                "-l", "warning",
            ]
        else:
            prefix = self.work / name
            prefix.mkdir(exist_ok=True)
            path = prefix / "nginx.conf"
            path.write_text(configs.nginx(str(prefix), port, backend, mode))
            argv = ["nginx", "-p", str(prefix), "-c", str(path), "-e", str(prefix / "stderr.log")]
        started_at = time.monotonic()
        started = self.procs.start(name, argv, PROXY_CPU)
        took = wait_port(port, 20, started.proc)
        if took is None:
            log = started.log.read_text(errors="replace").strip().splitlines()
            self.procs.stop(started)
            errors = [l.strip() for l in log if "rror" in l]
            specific = [l for l in errors if l.startswith("error:")]
            reason = (specific or errors or log or ["no output"])[-1]
            return None, port, f"did not start: {reason[-300:]}"
        started.startup_s = time.monotonic() - started_at
        return started, port, ""

    # --- measuring -------------------------------------------------------

    def load(self, scenario: str, port: int, seconds: float) -> loads.LoadResult:
        if scenario in ("bolt", "dubbo"):
            return loads.mg_load(self.bin, scenario, port, seconds)
        if scenario == "http1":
            return loads.wrk(port, seconds, HERE.parent / "wrk-report.lua")
        return loads.h2load(port, seconds, self.work, grpc=scenario == "grpc")

    def measure(self, scenario: str, target: str, port: int, proxy: Started | None) -> Row:
        """Warm-up run, then the measured run with the proxy's CPU time
        read from /proc just before and just after it."""
        self.load(scenario, port, self.args.warmup)
        cpu_before = cpu_seconds(proxy.pid) if proxy else (0.0, 0.0)
        result = self.load(scenario, port, self.args.seconds)
        cpu_after = cpu_seconds(proxy.pid) if proxy else (0.0, 0.0)
        row = Row(
            scenario, target, rps=result.rps, p50_us=result.p50_us, p99_us=result.p99_us,
            p999_us=result.p999_us, requests=result.requests, errors=result.errors,
        )
        if proxy:
            user, system = (after - before for after, before in zip(cpu_after, cpu_before))
            row.cpu_us_per_req = (user + system) * 1e6 / max(1, result.requests)
            row.peak_rss_kib = memory_kib(proxy.pid, "VmHWM")
            row.extra["proxy_cpu_s"] = user + system
            # Kernel time is mostly the sockets' work and waking the peers
            # on the other CPU: the split shows what the proxy's own code costs.
            row.extra["proxy_user_us_per_req"] = user * 1e6 / max(1, result.requests)
            row.extra["proxy_sys_us_per_req"] = system * 1e6 / max(1, result.requests)
        return row

    def http_served(self, scenario: str, port: int) -> str:
        """Why meshgate's listener does not serve `scenario`'s HTTP, or ""."""
        try:
            if scenario == "http1":
                with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    head = sock.recv(64)
                ok = head.startswith(b"HTTP/1.1 200")
            else:
                result = loads.h2load(port, 1, self.work, grpc=scenario == "grpc")
                ok = result.requests > 0 and result.errors == 0
        except (OSError, RuntimeError) as e:
            return f"probe failed: {e}"
        return "" if ok else "probe request not answered with 200"

    # --- scenarios -------------------------------------------------------

    def throughput(self, scenario: str) -> None:
        stub_protocol = {"bolt": "bolt", "dubbo": "dubbo", "http1": "http1"}.get(scenario, "h2")
        backend = self.backend(stub_protocol)
        targets: list[tuple[str, str, str]] = [("direct", "", "")]
        if scenario in ("bolt", "dubbo"):
            targets += [("meshgate", "meshgate", scenario), ("envoy tcp_proxy", "envoy", "tcp_proxy")]
            if scenario == "dubbo":
                targets.append(("envoy dubbo_proxy", "envoy", "dubbo_proxy"))
        elif scenario == "http1":
            targets += [("meshgate", "meshgate", "Http1"), ("envoy", "envoy", "http1"), ("nginx", "nginx", "http1")]
        else:
            targets += [("meshgate", "meshgate", "Http2"), ("envoy", "envoy", "http2")]
            if scenario == "grpc":
                targets.append(("nginx grpc_pass", "nginx", "grpc"))
            else:
                self.rows.append(Row(scenario, "nginx", skipped="nginx forwards HTTP/2 upstream only as gRPC (grpc_pass); see the grpc rows"))
        # Each round measures every target once, in the same order; a
        # target's figures are those of its median round (by req/s), and
        # its ratio to direct the median of the rounds' ratios, so a
        # machine that drifts between runs moves both sides of a ratio.
        rounds: dict[str, list[Row]] = {label: [] for label, _, _ in targets}
        failed: set[str] = set()
        for round_number in range(1, self.args.rounds + 1):
            for label, kind, mode in targets:
                if label in failed:
                    continue
                row = self.measure_target(scenario, label, kind, mode, backend)
                if row is None:
                    failed.add(label)
                    continue
                rounds[label].append(row)
                if self.args.rounds > 1:
                    self.say(f"round {round_number}/{self.args.rounds}: {report.line(row)}")
        direct = rounds["direct"] if "direct" not in failed else []
        for label, _, _ in targets:
            if label in failed or not rounds[label]:
                continue
            measured = rounds[label]
            row = sorted(measured, key=lambda r: r.rps)[len(measured) // 2]
            if len(measured) > 1:
                row.extra["rounds_rps"] = [r.rps for r in measured]
                row.extra["rounds_cpu_us_per_req"] = [r.cpu_us_per_req for r in measured]
            if direct and label != "direct":
                row.ratio = statistics.median(r.rps / d.rps for r, d in zip(measured, direct))
            self.rows.append(row)
            self.say(report.line(row))

    def measure_target(self, scenario: str, label: str, kind: str, mode: str, backend: int) -> Row | None:
        """One measured run of one target (starting and stopping its
        proxy); None, with the reason recorded, if it could not be run."""
        proxy, port = None, backend
        if kind:
            proxy, port, why = self.start_proxy(kind, mode, backend, f"{scenario}-{mode}")
            if proxy and kind == "meshgate" and scenario not in ("bolt", "dubbo"):
                why = self.http_served(scenario, port)
                if why:
                    self.procs.stop(proxy)
                    proxy = None
            if proxy is None:
                if kind == "meshgate" and scenario not in ("bolt", "dubbo"):
                    why = f"meshgate: HTTP not served by this build ({why})"
                self.skip(scenario, label, why)
                return None
        try:
            return self.measure(scenario, label, port, proxy)
        except (RuntimeError, ValueError, StopIteration, OSError) as e:
            self.skip(scenario, label, f"load failed: {e}")
            return None
        finally:
            if proxy:
                self.procs.stop(proxy)

    def skip(self, scenario: str, target: str, why: str) -> None:
        self.say(f"{scenario:6} {target:18} skipped: {why}")
        self.rows.append(Row(scenario, target, skipped=why))

    def memory(self) -> None:
        """RSS growth of each proxy holding IDLE_CONNECTIONS idle
        downstream connections, per connection."""
        bolt = self.backend("bolt")
        http1 = self.backend("http1")
        cases = [
            ("meshgate bolt", "meshgate", "bolt", bolt),
            ("meshgate HTTP/1", "meshgate", "Http1", http1),
            ("envoy tcp_proxy", "envoy", "tcp_proxy", bolt),
            ("envoy HTTP/1", "envoy", "http1", http1),
            ("nginx HTTP/1", "nginx", "http1", http1),
        ]
        for label, kind, mode, backend in cases:
            http = kind == "meshgate" and mode == "Http1"
            proxy, port, why = self.start_proxy(kind, mode, backend, f"memory-{mode}")
            if proxy is None:
                self.skip("memory", label, f"meshgate: HTTP not served by this build ({why})" if http else why)
                continue
            try:
                if http:
                    why = self.http_served("http1", port)
                    if why:
                        self.skip("memory", label, f"meshgate: HTTP not served by this build ({why})")
                        continue
                self.idle_rss(label, proxy, port)
            finally:
                self.procs.stop(proxy)

    def idle_rss(self, label: str, proxy: Started, port: int) -> None:
        time.sleep(0.5)
        before = memory_kib(proxy.pid, "VmRSS")
        hold = 8
        holder = self.procs.start(
            "idle-holder",
            [
                str(self.bin / "mg-load"), "--protocol", "bolt", "--target", f"127.0.0.1:{port}",
                "--idle-connections", str(IDLE_CONNECTIONS), "--duration", f"{hold}s", "--timeout", "10s",
            ],
            LOAD_CPU,
        )
        try:
            ready = self.procs.wait_line(holder, r"READY n=\d+ open_ms=(\d+)", 60)
            if not ready:
                self.skip("memory", label, f"could not open the connections: {holder.log.read_text()[-300:]}")
                return
            time.sleep(2)  # the proxy accepts and settles
            after = memory_kib(proxy.pid, "VmRSS")
            held = self.procs.wait_line(holder, r"HELD n=(\d+) closed_by_peer=(\d+)", hold + 10)
        finally:
            self.procs.stop(holder)
        closed = int(held.group(2)) if held else -1
        per_conn = (after - before) * 1024 / IDLE_CONNECTIONS
        row = Row("memory", label, peak_rss_kib=memory_kib(proxy.pid, "VmHWM"))
        row.extra = {
            "idle_connections": IDLE_CONNECTIONS,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_connection": per_conn,
            "closed_by_proxy": closed,
            "open_ms": int(ready.group(1)),
        }
        self.rows.append(row)
        self.say(f"memory {label:18} {before} KiB -> {after} KiB with {IDLE_CONNECTIONS} idle: {per_conn:,.0f} B/connection (closed by proxy: {closed}; opened in {row.extra['open_ms']:,} ms)")

    def startup(self) -> None:
        """Time from exec to the first accepted connection, median of
        STARTUP_RUNS starts."""
        bolt = self.backend("bolt")
        http1 = self.backend("http1")
        for label, kind, mode, backend in [
            ("meshgate", "meshgate", "bolt", bolt),
            ("envoy", "envoy", "tcp_proxy", bolt),
            ("nginx", "nginx", "http1", http1),
        ]:
            times = []
            why = ""
            for run in range(STARTUP_RUNS):
                proxy, _, why = self.start_proxy(kind, mode, backend, f"startup-{run}")
                if proxy is None:
                    break
                times.append(proxy.startup_s)
                self.procs.stop(proxy)
            if not times:
                self.skip("startup", label, why)
                continue
            row = Row("startup", label)
            row.extra = {"startup_ms": statistics.median(times) * 1e3, "runs_ms": [t * 1e3 for t in times]}
            self.rows.append(row)
            self.say(f"startup {label:18} {row.extra['startup_ms']:.1f} ms (median of {len(times)}: {', '.join(f'{t*1e3:.1f}' for t in times)})")

    def run(self) -> None:
        for scenario in self.args.scenarios:
            if scenario == "memory":
                self.memory()
            elif scenario == "startup":
                self.startup()
            else:
                self.throughput(scenario)


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="measure every target this many times, alternating; report the median round",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--out", default=str(HERE.parent / "results"))
    parser.add_argument("--envoy", default="")
    parser.add_argument("--envoy-missing", default="envoy not installed")
    parser.add_argument("--command", default="bench/run.sh")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {SCENARIOS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as work:
        harness = Harness(args, Path(work))

        def stop(signum, _frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            harness.run()
        finally:
            harness.procs.stop_all()
    results = {
        "command": args.command,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": machine(),
        "load": {
            "bolt/dubbo": f"mg-load {loads.MG_CONNECTIONS} connections x {loads.MG_IN_FLIGHT} in flight, 128-byte payloads",
            "http1": f"wrk -t1 -c{loads.WRK_CONNECTIONS}",
            "h2c/grpc": f"h2load -t1 -c{loads.H2_CONNECTIONS} -m{loads.H2_STREAMS}",
        },
        "rows": [asdict(r) for r in harness.rows],
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(report.markdown(results))
    try:
        report.chart(results, out / "results.png")
    except Exception as e:  # noqa: BLE001 - the figures stand without the chart
        print(f"chart not drawn: {e}", file=sys.stderr)
    print(report.markdown(results))
    print(f"wrote {out}/results.md, results.json, results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
