"""The harness's outputs: a console line per run, the markdown table and
the chart (matplotlib's Agg backend, which ships its own DejaVu fonts)."""

from __future__ import annotations

import targets


def _ms(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:.2f}"


def _seconds(ms: int | None) -> str:
    """Older results.json files have no `open_ms`."""
    return "—" if ms is None else f"{ms / 1000:.1f}"


def line(row) -> str:
    ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x direct)"
    cpu = "" if row.cpu_us_per_req is None else f", proxy CPU {row.cpu_us_per_req:.2f} us/req"
    rss = "" if row.peak_rss_kib is None else f", peak RSS {row.peak_rss_kib / 1024:.1f} MiB"
    return (
        f"{row.scenario:6} {row.target:18} {row.rps:>10,.0f} req/s{ratio}; p50 {_ms(row.p50_us)} "
        f"p99 {_ms(row.p99_us)} p999 {_ms(row.p999_us)} ms{cpu}{rss}; errors {row.errors}"
    )


def markdown(results: dict) -> str:
    rows = results["rows"]
    out = [
        "| scenario | target | req/s | × direct | p50 ms | p99 ms | p999 ms | proxy CPU µs/req | user / sys µs | proxy CPU busy | peak RSS MiB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    skipped = []
    for r in rows:
        if r["scenario"] in ("memory", "startup"):
            continue
        if r["skipped"]:
            skipped.append(f"- {r['scenario']} / {r['target']}: {r['skipped']}")
            continue
        ratio = "—" if r["ratio"] is None or r["target"] == "direct" else f"{r['ratio']:.2f}"
        cpu = "—" if r["cpu_us_per_req"] is None else f"{r['cpu_us_per_req']:.2f}"
        # The share of its CPU the proxy used: well under 100 % means it
        # was not the bottleneck (waiting, or not scheduled).
        busy = "—" if r["cpu_us_per_req"] is None else f"{r['cpu_us_per_req'] * r['rps'] / 1e4:.0f} %"
        rss = "—" if r["peak_rss_kib"] is None else f"{r['peak_rss_kib'] / 1024:.1f}"
        split = r["extra"]
        split = (
            f"{split['proxy_user_us_per_req']:.1f} / {split['proxy_sys_us_per_req']:.1f}"
            if "proxy_user_us_per_req" in split else "—"
        )
        out.append(
            f"| {r['scenario']} | {r['target']} | {r['rps']:,.0f} | {ratio} | {_ms(r['p50_us'])} | "
            f"{_ms(r['p99_us'])} | {_ms(r['p999_us'])} | {cpu} | {split} | {busy} | {rss} | {r['errors']} |"
        )
    rounds = [r for r in rows if "rounds_rps" in r["extra"]]
    if rounds:
        out += [
            "",
            f"Each target ran {results.get('rounds', len(rounds[0]['extra']['rounds_rps']))} times, "
            "alternating with the others; the table shows its median round, and the ratio to direct is "
            "the median of the rounds' ratios. Every round:",
            "",
            "| scenario | target | req/s per round | proxy CPU µs/req per round |",
            "|---|---|---|---|",
        ]
        for r in rounds:
            e = r["extra"]
            rps = ", ".join(f"{x:,.0f}" for x in e["rounds_rps"])
            cpu = ", ".join("—" if x is None else f"{x:.2f}" for x in e["rounds_cpu_us_per_req"])
            out.append(f"| {r['scenario']} | {r['target']} | {rps} | {cpu} |")
    memory = [r for r in rows if r["scenario"] == "memory"]
    if memory:
        out += [
            "",
            "| idle connections | RSS before KiB | RSS with 10,000 idle KiB | bytes / connection | closed by proxy | opened in s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in memory:
            if r["skipped"]:
                skipped.append(f"- memory / {r['target']}: {r['skipped']}")
                continue
            e = r["extra"]
            valid = "" if e["closed_by_proxy"] == 0 else " (not valid: the proxy closed connections)"
            out.append(
                f"| {r['target']} | {e['rss_before_kib']:,} | {e['rss_after_kib']:,} | "
                f"{e['bytes_per_connection']:,.0f}{valid} | {e['closed_by_proxy']} | {_seconds(e.get('open_ms'))} |"
            )
    startup = [r for r in rows if r["scenario"] == "startup"]
    if startup:
        out += ["", "| startup to first accepted connection | median ms | runs ms |", "|---|---:|---|"]
        for r in startup:
            if r["skipped"]:
                skipped.append(f"- startup / {r['target']}: {r['skipped']}")
                continue
            runs = ", ".join(f"{t:.1f}" for t in r["extra"]["runs_ms"])
            out.append(f"| {r['target']} | {r['extra']['startup_ms']:.1f} | {runs} |")
    out += ["", *targets.markdown(results)]
    if skipped:
        out += ["", "Skipped:", *skipped]
    return "\n".join(out) + "\n"


def chart(results: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if not r["skipped"] and r["rps"] is not None]
    scenarios = [s for s in dict.fromkeys(r["scenario"] for r in rows)]
    memory = [r for r in results["rows"] if r["scenario"] == "memory" and not r["skipped"]]
    columns = len(scenarios) + (1 if memory else 0)
    if not columns:
        return
    fig, axes = plt.subplots(2, columns, figsize=(4.2 * columns, 7.8), squeeze=False)
    colors = {"direct": "#888888", "meshgate": "#1f77b4", "envoy": "#d62728", "nginx": "#2ca02c"}
    for i, scenario in enumerate(scenarios):
        mine = [r for r in rows if r["scenario"] == scenario]
        labels = [r["target"].replace(" ", "\n") for r in mine]
        color = [colors.get(r["target"].split()[0], "#9467bd") for r in mine]
        top, bottom = axes[0][i], axes[1][i]
        bars = top.bar(labels, [r["rps"] / 1000 for r in mine], color=color)
        top.bar_label(bars, fmt="%.0f", fontsize=8)
        top.set_title(f"{scenario}: throughput")
        top.set_ylabel("thousand req/s")
        proxied = [r for r in mine if r["cpu_us_per_req"] is not None]
        bars = bottom.bar(
            [r["target"].replace(" ", "\n") for r in proxied],
            [r["cpu_us_per_req"] for r in proxied],
            color=[colors.get(r["target"].split()[0], "#9467bd") for r in proxied],
        )
        bottom.bar_label(bars, fmt="%.1f", fontsize=8)
        bottom.set_title(f"{scenario}: proxy CPU per request")
        bottom.set_ylabel("µs CPU / request (lower is better)")
        for ax in (top, bottom):
            ax.tick_params(axis="x", labelsize=8)
    if memory:
        top, bottom = axes[0][-1], axes[1][-1]
        labels = [r["target"].replace(" ", "\n") for r in memory]
        color = [colors.get(r["target"].split()[0], "#9467bd") for r in memory]
        per_conn = [r["extra"]["bytes_per_connection"] / 1024 for r in memory]
        bars = top.bar(labels, per_conn, color=color)
        top.bar_label(bars, fmt="%.1f", fontsize=8)
        top.axhline(4, color="black", linestyle="--", linewidth=0.8)
        top.set_title("RSS per idle connection (10,000 held)")
        top.set_ylabel("KiB / connection (target ≤ 4, dashed)")
        top.tick_params(axis="x", labelsize=7)
        startup = [r for r in results["rows"] if r["scenario"] == "startup" and not r["skipped"]]
        if startup:
            bars = bottom.bar(
                [r["target"] for r in startup],
                [r["extra"]["startup_ms"] for r in startup],
                color=[colors.get(r["target"], "#9467bd") for r in startup],
            )
            bottom.bar_label(bars, fmt="%.0f", fontsize=8)
            bottom.axhline(50, color="black", linestyle="--", linewidth=0.8)
            bottom.set_title("startup to first accepted connection")
            bottom.set_ylabel("ms, median of 5 (target ≤ 50, dashed)")
        else:
            bottom.axis("off")
    m = results["machine"]
    fig.suptitle(
        f"{results['command']}  ({results['started_utc']})\n{m['nproc']} CPUs ({m['cpu_model']}): proxy on CPU 0, "
        f"load generator + backend on CPU 1, {results['seconds']:.0f} s measured per run",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    # Renders results.md and results.png again from a run's results.json
    # (for a run made before the report changed): report.py DIR
    import json
    import sys
    from pathlib import Path

    if len(sys.argv) != 2:
        sys.exit("usage: bench/harness/report.py DIR (the directory of a run's results.json)")
    directory = Path(sys.argv[1])
    try:
        results = json.loads((directory / "results.json").read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {directory}/results.json: {e}")
    (directory / "results.md").write_text(markdown(results))
    print(f"wrote {directory}/results.md")
    try:
        chart(results, directory / "results.png")
        print(f"wrote {directory}/results.png")
    except ImportError as e:
        # matplotlib lives in bench/.venv (bench/run.sh installs it).
        print(f"chart not drawn ({e}); run this with bench/.venv/bin/python", file=sys.stderr)
