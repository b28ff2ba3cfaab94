"""REPORT.md and its charts, from a results.json of benchmarks/run.py."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

GENERATOR_BOUND = 0.6  # a result above this share of Locust's own ceiling measures Locust, not the server
P99_LIMIT = 100.0  # ms: past this, a load is not sustained

Row = dict[str, Any]


def sustained(row: Row) -> bool:
    """Every message delivered to every member, nothing repeated or failed, p99 delivery within the limit, and
    a load generator that kept up."""
    clean = row["missing"] == 0 and row["repeated_or_reordered"] == 0 and not row["failures"]
    generator = not row.get("generator_saturated", False)
    return bool(clean and generator and row.get("complete", True) and row["delivery_ms"]["99"] <= P99_LIMIT)


def best(rows: list[Row]) -> Row | None:
    """The sustained row with the most deliveries per second."""
    good = [row for row in rows if sustained(row)]
    return max(good, key=lambda row: row["deliveries_per_s"]) if good else None


def spread(values: list[float]) -> str:
    """Median, and the range when there were several runs."""
    if not values:
        return "-"
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.0f}"
    return f"{middle:,.0f} ({min(values):,.0f} to {max(values):,.0f})"


def fanout_table(rows: list[Row], ceiling: float) -> list[str]:
    """Scenario 1, one line per server and kind of message; ``ceiling`` 0 when Locust's is unknown."""
    columns = [
        "server",
        "messages",
        "max sustained deliveries/s (median, range)",
        "% of Locust's ceiling",
        "p50 / p95 / p99 ms at half of it",
        "server CPU s per 1000 deliveries (whole run)",
        "peak RSS MB",
    ]
    lines = header(columns)
    groups: dict[tuple[str, str], dict[int, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(row["variant"], row["user"])][row["repeat"]].append(row)
    for (variant, user), repeats in sorted(groups.items()):
        bests = [b for b in (best(runs) for runs in repeats.values()) if b is not None]
        maxima = [b["deliveries_per_s"] for b in bests]
        if not bests:
            lines.append(f"| {variant} | {kind(user)} | none sustained | | | | |")
            continue
        top = statistics.median(maxima)
        share = top / ceiling if ceiling else 0.0
        flag = " ⚠ generator-bound" if share > GENERATOR_BOUND and variant != "reference" else ""
        percent = f"{100 * share:.0f} %{flag}" if ceiling else "-"
        # Latency at half the best sustained rate (the rates double from step to step), median over the runs.
        half_rate = statistics.median(b["rate"] for b in bests) / 2
        at_half = [r for runs in repeats.values() for r in runs if r["rate"] == half_rate and sustained(r)]
        latency = (
            " / ".join(f"{statistics.median(r['delivery_ms'][p] for r in at_half):.2f}" for p in ("50", "95", "99"))
            + f" (at {half_rate:g}/s each)"
            if at_half
            else "- (no step at half)"
        )
        cpu = statistics.median(1000 * b["cpu_seconds"] / max(b["delivered"], 1) for b in bests)
        rss = max(b["peak_rss_mb"] for b in bests)
        cells = [variant, kind(user), spread(maxima), percent, latency, f"{cpu:.3f}", f"{rss:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def kind(user: str) -> str:
    return {"ChatMember": "chat protocol", "BareMember": "bare room (§18)", "EchoClient": "echo"}.get(user, user)


def overhead_table(rows: list[Row]) -> list[str]:
    """Scenario 2: the chat protocol against the same server's bare room, at the same load."""
    lines = header(
        [
            "server",
            "per-member rate",
            "chat p99 ms",
            "bare p99 ms",
            "chat CPU s / 1000 deliveries",
            "bare CPU s / 1000 deliveries",
        ]
    )
    pairs: dict[tuple[str, float], dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        pairs[(row["variant"], row["rate"])][row["user"]].append(row)
    for (variant, rate), users in sorted(pairs.items()):
        chat, bare = users.get("ChatMember"), users.get("BareMember")
        if not chat or not bare:
            continue

        def p99(runs: list[Row]) -> str:
            return f"{statistics.median(r['delivery_ms']['99'] for r in runs):.2f}"

        def cpu(runs: list[Row]) -> str:
            return f"{statistics.median(1000 * r['cpu_seconds'] / max(r['delivered'], 1) for r in runs):.3f}"

        lines.append(f"| {variant} | {rate:g}/s | {p99(chat)} | {p99(bare)} | {cpu(chat)} | {cpu(bare)} |")
    return lines


def chart(rows: list[Row], path: Path) -> None:
    """Deliveries per second against the offered load, one line per server (chat protocol; the reference's bare
    room as the ceiling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["user"] == "ChatMember" or row["variant"] == "reference":
            series[row["variant"]][row["offered_per_s"]].append(row["deliveries_per_s"])
    for variant, points in sorted(series.items()):
        xs = sorted(points)
        axes.plot(xs, [statistics.median(points[x]) for x in xs], marker="o", label=variant)
    axes.set_xlabel("messages sent per second (offered)")
    axes.set_ylabel("deliveries per second")
    axes.set_title("Fan-out throughput")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(results: dict[str, Any], out: Path) -> None:
    results = json.loads(json.dumps(results))  # percentile keys as strings, as in results.json
    rows: list[Row] = results["fanout"]
    reference = [row for row in rows if row["variant"] == "reference"]
    ceiling = max((row["deliveries_per_s"] for row in reference if sustained(row)), default=0.0)
    reached = any(not sustained(row) for row in reference)  # else the steps stopped below Locust's ceiling
    machine = results["machine"]
    chart(rows, out / "fanout.png")
    lines = [
        f"# Benchmark report ({results['profile']})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; servers on cores {machine['server_cores']}, "
        f"Locust on {machine['generator_cores']}. Python {machine['python']}, Linux {machine['kernel']}.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in machine["versions"].items()) + ".",
        "",
        f"Load: {results['settings']}. Server settings: {results['chat_settings']}.",
        "",
    ]
    if results["gated_out"]:
        lines += [f"Not benchmarked (the conformance smoke run failed): {', '.join(results['gated_out'])}.", ""]
    lines += [
        "## 1. Fan-out throughput and latency",
        "",
        (
            f"Locust's own ceiling (the picows reference's best sustained bare room): {ceiling:,.0f} deliveries/s. "
            f"A result above {100 * GENERATOR_BOUND:.0f} % of it is flagged: it measures the load generator."
            if reached
            else f"The steps stopped before the picows reference stopped keeping up, so Locust's own ceiling is above "
            f"{ceiling:,.0f} deliveries/s and no result is flagged: these loads are all below every server's limit."
        ),
        "",
        *fanout_table(rows, ceiling if reached else 0.0),
        "",
        "![Fan-out throughput](fanout.png)",
        "",
        "## 2. Protocol overhead",
        "",
        *overhead_table(rows),
        "",
    ]
    (out / "REPORT.md").write_text("\n".join(lines))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_report(json.loads((folder / "results.json").read_text()), folder)
