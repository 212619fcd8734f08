"""The targets' verdicts from a run's results (run by scripts/test:
python3 -m unittest discover -s bench/harness -p 'test_*.py')."""

from __future__ import annotations

import copy
import unittest

import report
import targets


def _row(scenario, target, rps=None, ratio=None, p99_us=None, cpu=None, errors=0, skipped=None, extra=None):
    return {
        "scenario": scenario,
        "target": target,
        "rps": rps,
        "p50_us": None,
        "p99_us": p99_us,
        "p999_us": None,
        "ratio": ratio,
        "cpu_us_per_req": cpu,
        "peak_rss_kib": None,
        "requests": None,
        "errors": errors,
        "skipped": skipped,
        "extra": extra or {},
    }


def _idle(target, per, closed=0):
    return _row(
        "memory",
        target,
        extra={
            "idle_connections": 10_000,
            "rss_before_kib": 1,
            "rss_after_kib": 2,
            "bytes_per_connection": per,
            "closed_by_proxy": closed,
        },
    )


# Every target met, each by a small margin.
PASSING = {
    "rows": [
        _row("bolt", "direct", rps=100_000, p99_us=500),
        _row("bolt", "meshgate", rps=91_000, ratio=0.91, p99_us=740, cpu=2.0),
        _row("dubbo", "direct", rps=100_000, p99_us=500),
        _row("dubbo", "meshgate", rps=95_000, ratio=0.95, p99_us=750, cpu=2.0),
        _row("dubbo", "envoy dubbo_proxy", rps=9_000, cpu=14.0),
        _row("http1", "direct", rps=70_000, p99_us=800),
        _row("http1", "meshgate", rps=66_500, ratio=0.95, p99_us=1_500, cpu=14.0),
        _row("http1", "envoy", rps=22_000, cpu=40.0),
        _row("http1", "nginx", rps=60_000, cpu=14.0),
        _row("h2c", "direct", rps=200_000),
        _row("h2c", "meshgate", rps=100_000, ratio=0.5, cpu=6.0),
        _row("h2c", "envoy", rps=40_000, cpu=19.0),
        _row("grpc", "direct", rps=140_000),
        _row("grpc", "meshgate", rps=90_000, ratio=0.64, cpu=9.0),
        _row("grpc", "envoy", rps=30_000, cpu=25.0),
        _row("grpc", "nginx grpc_pass", rps=60_000, cpu=28.0),
        _idle("meshgate bolt", 4096),
        _idle("meshgate HTTP/1", 3_566),
        _row("startup", "meshgate", extra={"startup_ms": 50.0, "runs_ms": [50.0]}),
    ]
}


def _status(results) -> dict[str, str]:
    return {v.goal: v.status for v in targets.judge(results)}


def _with(results, scenario, target, **changes):
    changed = copy.deepcopy(results)
    for row in changed["rows"]:
        if row["scenario"] == scenario and row["target"] == target:
            unknown = set(changes) - set(row)
            assert not unknown, f"rows have no {unknown}"
            row.update(changes)
    return changed


class Targets(unittest.TestCase):
    def test_every_target_met_at_its_bound(self):
        statuses = _status(PASSING)
        self.assertEqual(len(statuses), 10)
        self.assertEqual(set(statuses.values()), {targets.MET}, statuses)

    def test_a_ratio_just_under_its_bound_is_not_met_though_it_rounds_to_it(self):
        verdicts = {v.goal: v for v in targets.judge(_with(PASSING, "http1", "meshgate", ratio=0.948))}
        verdict = verdicts["HTTP/1 ≥ 0.95× direct"]
        self.assertEqual(verdict.measured, "0.95× direct")
        self.assertEqual(verdict.status, targets.NOT_MET)

    def test_a_tail_over_its_bound_fails_its_goal(self):
        statuses = _status(_with(PASSING, "bolt", "meshgate", p99_us=751))
        self.assertEqual(statuses["bolt ≥ 0.9× direct, p99 ≤ 1.5× direct"], targets.NOT_MET)
        self.assertEqual(statuses["Dubbo ≥ 0.9× direct, p99 ≤ 1.5× direct"], targets.MET)

    def test_a_peer_ratio_is_the_median_rounds_requests_per_second(self):
        statuses = _status(_with(PASSING, "http1", "envoy", rps=22_200))
        self.assertEqual(statuses["HTTP/1 ≥ 3× Envoy"], targets.NOT_MET)
        statuses = _status(_with(PASSING, "grpc", "nginx grpc_pass", rps=60_001))
        self.assertEqual(statuses["gRPC ≥ 0.5× direct, ≥ 2.5× Envoy, ≥ 1.5× nginx `grpc_pass`"], targets.NOT_MET)

    def test_more_cpu_per_request_than_nginx_is_not_met(self):
        statuses = _status(_with(PASSING, "http1", "meshgate", cpu_us_per_req=14.01))
        self.assertEqual(statuses["HTTP/1 CPU per request ≤ nginx's"], targets.NOT_MET)

    def test_errors_meet_nothing(self):
        verdicts = {v.goal: v for v in targets.judge(_with(PASSING, "dubbo", "meshgate", errors=3))}
        for goal in ("Dubbo ≥ 0.9× direct, p99 ≤ 1.5× direct", "Dubbo ≥ 10× Envoy `dubbo_proxy`"):
            self.assertEqual(verdicts[goal].status, targets.NOT_MET)
            self.assertIn("3 errors", verdicts[goal].measured)

    def test_a_run_whose_every_request_failed_is_not_met(self):
        failed = _with(PASSING, "http1", "meshgate", rps=0.0, ratio=0.0, cpu_us_per_req=None, errors=64)
        statuses = _status(failed)
        for goal in ("HTTP/1 ≥ 0.95× direct", "HTTP/1 ≥ 3× Envoy", "HTTP/1 CPU per request ≤ nginx's"):
            self.assertEqual(statuses[goal], targets.NOT_MET)

    def test_a_skipped_peer_is_not_measured_unless_another_part_failed(self):
        skipped = _with(PASSING, "h2c", "envoy", skipped="envoy not installed")
        self.assertEqual(_status(skipped)["h2c ≥ 0.5× direct, ≥ 2.5× Envoy"], targets.NOT_MEASURED)
        failed_too = _with(skipped, "h2c", "meshgate", ratio=0.49)
        self.assertEqual(_status(failed_too)["h2c ≥ 0.5× direct, ≥ 2.5× Envoy"], targets.NOT_MET)

    def test_scenarios_left_out_of_a_run_are_not_measured(self):
        only_http = {"rows": [r for r in PASSING["rows"] if r["scenario"] == "http1"]}
        statuses = _status(only_http)
        self.assertEqual(statuses["HTTP/1 ≥ 0.95× direct"], targets.MET)
        for goal in ("bolt ≥ 0.9× direct, p99 ≤ 1.5× direct", "≤ 4 KiB RSS per idle downstream connection",
                     "startup to first accepted connection ≤ 50 ms"):
            self.assertEqual(statuses[goal], targets.NOT_MEASURED)

    def test_idle_memory_counts_only_when_the_proxy_closed_nothing(self):
        over = _with(PASSING, "memory", "meshgate HTTP/1", extra={"bytes_per_connection": 4097, "closed_by_proxy": 0})
        self.assertEqual(_status(over)["≤ 4 KiB RSS per idle downstream connection"], targets.NOT_MET)
        closed = _with(PASSING, "memory", "meshgate bolt", extra={"bytes_per_connection": 100, "closed_by_proxy": 5})
        verdict = {v.goal: v for v in targets.judge(closed)}["≤ 4 KiB RSS per idle downstream connection"]
        self.assertEqual(verdict.status, targets.NOT_MEASURED)
        self.assertIn("closed 5 connections", verdict.measured)

    def test_slow_startup_is_not_met(self):
        slow = _with(PASSING, "startup", "meshgate", extra={"startup_ms": 50.1, "runs_ms": [50.1]})
        self.assertEqual(_status(slow)["startup to first accepted connection ≤ 50 ms"], targets.NOT_MET)

    def test_the_report_carries_the_verdicts(self):
        text = report.markdown(_with(PASSING, "http1", "envoy", rps=30_000))
        self.assertIn("| HTTP/1 ≥ 3× Envoy | 2.22× envoy | not met |", text)
        self.assertIn("| HTTP/1 ≥ 0.95× direct | 0.95× direct | **met** |", text)


if __name__ == "__main__":
    unittest.main()
