"""The performance targets (issue 6), judged from one run's results, so
every run is read against them the same way.

Each verdict is a goal, what the run measured for it, and whether it was
met. Comparisons use the unrounded figures: a ratio of 0.948 is shown as
0.95 but does not meet a 0.95 target. A goal with a part the run did not
measure (a skipped scenario or target) is "not measured", unless another
part already failed. A target that saw errors meets nothing."""

from __future__ import annotations

from dataclasses import dataclass

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"

IDLE_BYTES_MAX = 4096
STARTUP_MS_MAX = 50.0


@dataclass(frozen=True)
class Verdict:
    goal: str
    measured: str
    status: str


@dataclass(frozen=True)
class _Part:
    """One comparison of a goal: `None` as `ok` when it was not measured."""

    text: str
    ok: bool | None


class _Rows:
    def __init__(self, results: dict):
        self.rows = {
            (r["scenario"], r["target"]): r for r in results.get("rows", []) if not r.get("skipped")
        }

    def get(self, scenario: str, target: str) -> dict | None:
        return self.rows.get((scenario, target))


def _verdict(goal: str, parts: list[_Part]) -> Verdict:
    measured = "; ".join(p.text for p in parts)
    if any(p.ok is False for p in parts):
        status = NOT_MET
    elif any(p.ok is None for p in parts):
        status = NOT_MEASURED
    else:
        status = MET
    return Verdict(goal, measured, status)


def _against(rows: _Rows, scenario: str, peer: str, field: str, what: str) -> tuple[dict, float, float] | _Part:
    """meshgate's row with its and `peer`'s `field`, or the part to report
    instead: not measured, or failed on errors."""
    mine, theirs = rows.get(scenario, "meshgate"), rows.get(scenario, peer)
    # Errors first: a run whose every request failed has no figure either.
    if mine is not None and mine.get("errors"):
        return _Part(f"{mine['errors']:,} errors", False)
    if mine is None or theirs is None or not mine.get(field) or not theirs.get(field):
        return _Part(f"{what} not measured", None)
    return mine, mine[field], theirs[field]


def _direct(rows: _Rows, scenario: str, at_least: float, p99_at_most: float | None = None) -> list[_Part]:
    got = _against(rows, scenario, "direct", "rps", "× direct")
    if isinstance(got, _Part):
        return [got]
    # The median of the rounds' ratios, as the table shows it.
    ratio = got[0]["ratio"]
    parts = [_Part(f"{ratio:.2f}× direct", ratio >= at_least)]
    if p99_at_most is not None:
        got = _against(rows, scenario, "direct", "p99_us", "p99")
        if isinstance(got, _Part):
            parts.append(got)
        else:
            p99 = got[1] / got[2]
            parts.append(_Part(f"p99 {p99:.2f}× direct", p99 <= p99_at_most))
    return parts


def _peer(rows: _Rows, scenario: str, peer: str, at_least: float) -> _Part:
    got = _against(rows, scenario, peer, "rps", f"× {peer}")
    if isinstance(got, _Part):
        return got
    ratio = got[1] / got[2]
    return _Part(f"{ratio:.2f}× {peer}", ratio >= at_least)


def _cpu_at_most(rows: _Rows, scenario: str, peer: str) -> _Part:
    got = _against(rows, scenario, peer, "cpu_us_per_req", f"CPU per request against {peer}")
    if isinstance(got, _Part):
        return got
    _, mine_us, theirs_us = got
    return _Part(
        f"{mine_us / theirs_us:.2f}× {peer}'s CPU per request ({mine_us:.2f} against {theirs_us:.2f} µs)",
        mine_us <= theirs_us,
    )


def _idle(rows: _Rows, target: str) -> _Part:
    row = rows.get("memory", target)
    if row is None:
        return _Part(f"{target} not measured", None)
    extra = row["extra"]
    if extra.get("closed_by_proxy"):
        return _Part(f"{target}: not valid, the proxy closed {extra['closed_by_proxy']:,} connections", None)
    per = extra["bytes_per_connection"]
    return _Part(f"{target} {per:,.0f} B", per <= IDLE_BYTES_MAX)


def _startup(rows: _Rows) -> _Part:
    row = rows.get("startup", "meshgate")
    if row is None:
        return _Part("not measured", None)
    ms = row["extra"]["startup_ms"]
    return _Part(f"{ms:.1f} ms", ms <= STARTUP_MS_MAX)


def judge(results: dict) -> list[Verdict]:
    rows = _Rows(results)
    return [
        _verdict("bolt ≥ 0.9× direct, p99 ≤ 1.5× direct", _direct(rows, "bolt", 0.9, 1.5)),
        _verdict("Dubbo ≥ 0.9× direct, p99 ≤ 1.5× direct", _direct(rows, "dubbo", 0.9, 1.5)),
        _verdict("Dubbo ≥ 10× Envoy `dubbo_proxy`", [_peer(rows, "dubbo", "envoy dubbo_proxy", 10.0)]),
        _verdict("HTTP/1 ≥ 0.95× direct", _direct(rows, "http1", 0.95)),
        _verdict("HTTP/1 ≥ 3× Envoy", [_peer(rows, "http1", "envoy", 3.0)]),
        _verdict("HTTP/1 CPU per request ≤ nginx's", [_cpu_at_most(rows, "http1", "nginx")]),
        _verdict(
            "h2c ≥ 0.5× direct, ≥ 2.5× Envoy",
            _direct(rows, "h2c", 0.5) + [_peer(rows, "h2c", "envoy", 2.5)],
        ),
        _verdict(
            "gRPC ≥ 0.5× direct, ≥ 2.5× Envoy, ≥ 1.5× nginx `grpc_pass`",
            _direct(rows, "grpc", 0.5)
            + [_peer(rows, "grpc", "envoy", 2.5), _peer(rows, "grpc", "nginx grpc_pass", 1.5)],
        ),
        _verdict(
            "≤ 4 KiB RSS per idle downstream connection",
            [_idle(rows, "meshgate bolt"), _idle(rows, "meshgate HTTP/1")],
        ),
        _verdict("startup to first accepted connection ≤ 50 ms", [_startup(rows)]),
    ]


def markdown(results: dict) -> list[str]:
    out = [
        "| target (issue 6) | measured | |",
        "|---|---|---|",
    ]
    for v in judge(results):
        status = f"**{v.status}**" if v.status == MET else v.status
        out.append(f"| {v.goal} | {v.measured} | {status} |")
    out += [
        "",
        "The allocation-free forward path is checked by `tests/forward_allocations.rs`, not by this harness.",
    ]
    return out
