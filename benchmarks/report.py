"""REPORT.md and its charts, from a results.json of benchmarks/run.py."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

# Locust's one process can use one core: a result measured while it used more than this share of it is close
# to Locust's own ceiling for that kind of work, and measures Locust rather than the server.
GENERATOR_BOUND = 0.6
P99_LIMIT = 100.0  # ms: past this, a load is not sustained

Row = dict[str, Any]


def sustained(row: Row) -> bool:
    """Every message delivered to every member, nothing repeated or failed, p99 delivery within the limit, and
    a load generator that kept up."""
    clean = row["missing"] == 0 and row["repeated_or_reordered"] == 0 and not row["failures"]
    generator = not row.get("generator_saturated", False)
    return bool(clean and generator and row.get("complete", True) and row["delivery_ms"]["99"] <= P99_LIMIT)


def why(row: Row) -> str:
    """Why a step was not sustained."""
    reasons = []
    if row["delivery_ms"]["99"] > P99_LIMIT:
        reasons.append(f"p99 {row['delivery_ms']['99']:.0f} ms")
    if row["missing"] or row["repeated_or_reordered"] or not row.get("complete", True):
        reasons.append(f"{row['delivered']} of {row['expected']} delivered")
    if row["failures"]:
        reasons.append(listed(row["failures"]))
    if row.get("generator_saturated"):
        reasons.append("Locust saturated")
    return "; ".join(reasons) or "sustained"


def repeats(rows: list[Row]) -> list[int]:
    return sorted({row["repeat"] for row in rows})


def best(rows: list[Row]) -> Row | None:
    """The sustained row with the most deliveries per second."""
    good = [row for row in rows if sustained(row)]
    return max(good, key=lambda row: row["deliveries_per_s"]) if good else None


def spread(values: list[float], digits: int = 0) -> str:
    """Median, and the range when there were several runs."""
    if not values:
        return "-"
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f}"
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f} to {max(values):,.{digits}f})"


def fanout_table(rows: list[Row], ceiling: float) -> list[str]:
    """Scenario 1, one line per server and kind of message; ``ceiling``: the reference's best, 0 if unknown."""
    columns = [
        "server",
        "messages",
        "max sustained deliveries/s (median, range)",
        "% of the reference's",
        "Locust's CPU at it",
        "p50 / p95 / p99 ms at half of it",
        "server CPU ms per 1000 deliveries",
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
            first = min((r for runs in repeats.values() for r in runs), key=lambda r: r["rate"])
            at = f"none sustained: at {first['rate']:g}/s each, {first['deliveries_per_s']:,.0f}/s, {why(first)}"
            lines.append(f"| {variant} | {kind(user)} | {at} | | {100 * first.get('generator_cpu', 0):.0f} % | | | |")
            continue
        load = statistics.median(b.get("generator_cpu", 0.0) for b in bests)
        flag = " ⚠ generator-bound" if load > GENERATOR_BOUND else ""
        # Latency at half the best sustained rate (the rates double from step to step), median over the runs.
        half_rate = statistics.median(b["rate"] for b in bests) / 2
        at_half = [r for runs in repeats.values() for r in runs if r["rate"] == half_rate and sustained(r)]
        latency = (
            " / ".join(f"{statistics.median(r['delivery_ms'][p] for r in at_half):.2f}" for p in ("50", "95", "99"))
            + f" (at {half_rate:g}/s each)"
            if at_half
            else "- (no step at half)"
        )
        cpu = statistics.median(1e6 * b["cpu_seconds"] / max(b["delivered"], 1) for b in bests)
        rss = max(b["peak_rss_mb"] for b in bests)
        share = f"{100 * statistics.median(maxima) / ceiling:.0f} %" if ceiling else "-"
        cells = [
            variant,
            kind(user),
            spread(maxima),
            share,
            f"{100 * load:.0f} %{flag}",
            latency,
            f"{cpu:.0f}",
            f"{rss:.0f}",
        ]
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
            "chat CPU ms / 1000 deliveries",
            "bare CPU ms / 1000 deliveries",
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
            return f"{statistics.median(1e6 * r['cpu_seconds'] / max(r['delivered'], 1) for r in runs):.0f}"

        lines.append(f"| {variant} | {rate:g}/s | {p99(chat)} | {p99(bare)} | {cpu(chat)} | {cpu(bare)} |")
    return lines


def figure(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(8, 5))
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return fig, axes


def save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bars(axes: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    """Grouped bars: one group per entry of ``groups``, one bar per series."""
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        axes.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    axes.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=20)
    axes.legend()


def throughput_chart(rows: list[Row], path: Path) -> None:
    """Deliveries per second against the offered load, one line per server (chat protocol; the reference's bare
    room as the ceiling)."""
    fig, axes = figure("Fan-out throughput", "messages sent per second (offered)", "deliveries per second")
    series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["user"] == "ChatMember" or row["variant"] == "reference":
            series[row["variant"]][row["offered_per_s"]].append(row["deliveries_per_s"])
    for variant, points in sorted(series.items()):
        xs = sorted(points)
        axes.plot(xs, [statistics.median(points[x]) for x in xs], marker="o", label=variant)
    axes.legend()
    save(fig, path)


def latency_chart(rows: list[Row], path: Path) -> None:
    """p50 / p95 / p99 delivery latency of the chat at the lowest rate, the load every server was given."""
    chat = [row for row in rows if row["user"] == "ChatMember"]
    if not chat:
        return
    rate = min(row["rate"] for row in chat)
    variants = sorted({row["variant"] for row in chat})
    fig, axes = figure(f"Chat delivery latency at {rate:g} message/s per member", "", "ms (log scale)")
    series = {
        f"p{p}": [
            statistics.median(r["delivery_ms"][p] for r in chat if r["variant"] == v and r["rate"] == rate)
            for v in variants
        ]
        for p in ("50", "95", "99")
    }
    bars(axes, variants, series)
    axes.set_yscale("log")
    save(fig, path)


def disconnects_chart(rows: list[Row], path: Path) -> None:
    """Median time until every member heard a leave, by way of leaving."""
    variants = sorted({row["variant"] for row in rows})
    fig, axes = figure("Time until every member heard the leave (median)", "", "ms (log scale)")
    series = {
        way: [
            statistics.median(r["heard_by_all_ms"]["50"] for r in rows if r["variant"] == v and r["way"] == way)
            for v in variants
        ]
        for way in WAYS
    }
    bars(axes, variants, series)
    axes.set_yscale("log")
    save(fig, path)


def churn_chart(rows: list[Row], path: Path) -> None:
    """The server's RSS over a churn run (the first repeat of each server)."""
    fig, axes = figure("Server RSS during churn", "seconds", "RSS, MB (all of the server's processes)")
    for row in rows:
        if row["repeat"] == 0:
            xs, ys = zip(*row["rss_timeline"], strict=True)
            axes.plot(xs, ys, label=row["variant"])
    axes.legend()
    save(fig, path)


WAYS = ("clean", "vanish", "silent")


def disconnects_table(rows: list[Row]) -> list[str]:
    """Scenario 3, one line per server and way of leaving; times are medians over the runs."""
    lines = header(
        [
            "server",
            "way of leaving (leaves)",
            "heard by every member, ms: median (max)",
            "chat_connections back, ms: median (max)",
            "survivors: delivered / missed / repeated",
            "the leaver saw",
            "failures",
        ]
    )
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row["variant"], row["way"])].append(row)
    for (variant, way), runs in sorted(groups.items(), key=lambda item: (item[0][0], WAYS.index(item[0][1]))):
        heard, back = median_and_max(runs, "heard_by_all_ms"), median_and_max(runs, "connections_back_ms")
        survivors = "{} / {} / {}".format(
            *(sum(r[k] for r in runs) for k in ("survivors_delivered", "missing", "repeated_or_reordered"))
        )
        if not all(r.get("complete", True) for r in runs):
            survivors += " ⚠ incomplete"
        codes = listed(total(runs, "leaver_codes"))
        failures = listed(total(runs, "failures")) or "none"
        leaves = sum(r["leaves"] for r in runs)
        lines.append(f"| {variant} | {way} ({leaves}) | {heard} | {back} | {survivors} | {codes} | {failures} |")
    return lines


def churn_table(rows: list[Row]) -> list[str]:
    """Scenario 4, one line per server."""
    lines = header(
        [
            "server",
            "cycles",
            "cycles/s",
            "cycle p50 / p99 ms",
            "failures",
            "connections left",
            "RSS MB: start → half-way → end",
            "RSS growth in the second half, MB",
        ]
    )
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row["variant"]].append(row)
    for variant, runs in sorted(groups.items()):
        cycles = sum(r["cycles"] for r in runs)
        rate = spread([r["cycles_per_s"] for r in runs])
        cycle = f"{median(runs, 'cycle_ms', '50'):.1f} / {median(runs, 'cycle_ms', '99'):.1f}"
        failures = listed(total(runs, "failures")) or "none"
        left = max(r["connections_left"] for r in runs)
        rss = " → ".join(
            f"{statistics.median(r[k] for r in runs):.0f}" for k in ("rss_before_mb", "rss_half_mb", "rss_end_mb")
        )
        growth = spread([r["rss_end_mb"] - r["rss_half_mb"] for r in runs], digits=1)
        lines.append(f"| {variant} | {cycles} | {rate} | {cycle} | {failures} | {left:g} | {rss} | {growth} |")
    return lines


def slow_table(rows: list[Row]) -> list[str]:
    """Scenario 5, one line per server: the same load with and without the slow readers."""
    lines = header(
        [
            "server",
            "healthy p99 ms without / with slow readers",
            "healthy: delivered of expected, missed, repeated",
            "slow readers closed with",
            "closed after s (median)",
            "resumed",
            "failures",
            "peak RSS MB without / with",
        ]
    )
    groups: dict[str, dict[bool, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[row["variant"]][row["slow_readers"] > 0].append(row)
    for variant, kinds in sorted(groups.items()):
        without, with_ = kinds.get(False, []), kinds.get(True, [])
        if not without or not with_:
            continue
        p99 = f"{median(without, 'delivery_ms', '99'):.1f} / {median(with_, 'delivery_ms', '99'):.1f}"
        healthy = "{} of {}, {}, {}".format(
            *(sum(r[k] for r in with_) for k in ("delivered", "expected", "missing", "repeated_or_reordered"))
        ) + ("" if all(r["complete"] for r in with_ + without) else " ⚠ incomplete")
        codes = listed(total(with_, "slow_codes")) or "not closed"
        closed = statistics.median(r["closed_after_s"] for r in with_)
        resumed = f"{sum(r['slow_resumed'] for r in with_)} of {sum(r['slow_readers'] for r in with_)}"
        failures = listed(total(with_ + without, "failures")) or "none"
        rss = f"{max(r['peak_rss_mb'] for r in without):.0f} / {max(r['peak_rss_mb'] for r in with_):.0f}"
        lines.append(f"| {variant} | {p99} | {healthy} | {codes} | {closed:.1f} | {resumed} | {failures} | {rss} |")
    return lines


def idle_table(rows: list[Row]) -> list[str]:
    """Scenario 6, one line per server and number of connections."""
    lines = header(
        [
            "server",
            "idle connections",
            "RSS MB before → with them",
            "KB per connection",
            "KB per added connection, from the smaller count",
            "connect p50 / p99 ms (while 100 more connect per second)",
            "failures",
        ]
    )
    groups: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row["variant"], row["connections"])].append(row)
    for (variant, count), runs in sorted(groups.items()):
        smaller = [c for v, c in groups if v == variant and c < count]
        marginal = "-"
        if smaller:  # first-request setup (imports, caches) cancels out
            below = groups[(variant, max(smaller))]
            sizes = [float(statistics.median(r["rss_mb"] for r in rows)) for rows in (below, runs)]
            connected = [float(statistics.median(r["connected"] for r in rows)) for rows in (below, runs)]
            marginal = f"{(sizes[1] - sizes[0]) * 1024 / max(connected[1] - connected[0], 1):.1f}"
        reached = "" if all(r["all_connected"] for r in runs) else " (not all connected)"
        rss = " → ".join(f"{statistics.median(r[k] for r in runs):.0f}" for k in ("rss_before_mb", "rss_mb"))
        per = spread([r["kb_per_connection"] for r in runs], digits=1)
        connect = f"{median(runs, 'connect_ms', '50'):.1f} / {median(runs, 'connect_ms', '99'):.1f}"
        failures = listed(total(runs, "failures")) or "none"
        lines.append(f"| {variant} | {count}{reached} | {rss} | {per} | {marginal} | {connect} | {failures} |")
    return lines


def median(runs: list[Row], key: str, percentile: str) -> float:
    return float(statistics.median(r[key][percentile] for r in runs))


def median_and_max(runs: list[Row], key: str) -> str:
    """The median of the runs' medians, and the largest of their maxima."""
    return f"{ms(median(runs, key, '50'))} ({ms(max(r[key]['100'] for r in runs))})"


def ms(value: float) -> str:
    """Milliseconds with a resolution that fits them (histogram.py's buckets are 2 % wide)."""
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def listed(counts: dict[str, int]) -> str:
    """Counts as "name: n, name: n" ("" for none)."""
    return ", ".join(f"{name}: {n}" for name, n in counts.items())


def total(runs: list[Row], key: str) -> dict[str, int]:
    """Counts (close codes, failures) added up over the runs."""
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        for name, n in run[key].items():
            counts[name] += n
    return dict(sorted(counts.items()))


def write_report(results: dict[str, Any], out: Path) -> None:
    results = json.loads(json.dumps(results))  # percentile keys as strings, as in results.json
    rows: list[Row] = results["fanout"]
    reference = [row for row in rows if row["variant"] == "reference"]
    bests = [
        b["deliveries_per_s"]
        for b in (best([r for r in reference if r["repeat"] == n]) for n in repeats(reference))
        if b
    ]
    ceiling = statistics.median(bests) if bests else 0.0  # the median of the runs' best
    machine = results["machine"]
    lines = [
        f"# Benchmark report ({results['profile']})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; servers on cores {machine['server_cores']}, "
        f"Locust on {machine['generator_cores']}. Python {machine['python']}, Linux {machine['kernel']}.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in machine["versions"].items()) + ".",
        "",
        f"Load: {results['settings']}. Server settings: {results['chat_settings']}; "
        f"per scenario: {results.get('scenario_settings', {})}.",
        "",
        "How it was measured, and how to read it: [benchmarks/README.md](../../README.md).",
        "",
    ]
    if results["gated_out"]:
        lines += [f"Not benchmarked (the conformance smoke run failed): {', '.join(results['gated_out'])}.", ""]
    if rows:
        throughput_chart(rows, out / "fanout.png")
        latency_chart(rows, out / "latency.png")
        lines += [
            "## 1. Fan-out throughput and latency",
            "",
            f"The machine's ceiling, the picows reference's best sustained bare room (median of the runs):"
            f" {ceiling:,.0f} deliveries/s"
            + ("" if any(not sustained(r) for r in reference) else " (or more: it sustained every step)")
            + f". A result measured while Locust used more than {100 * GENERATOR_BOUND:.0f} % of its core is flagged"
            " ⚠ generator-bound: it is close to Locust's own ceiling for that work, and measures Locust.",
            "",
            *fanout_table(rows, ceiling),
            "",
            "![Fan-out throughput](fanout.png)",
            "",
            "![Delivery latency](latency.png)",
            "",
            "## 2. Protocol overhead",
            "",
            *overhead_table(rows),
            "",
        ]
    if results.get("disconnects"):
        disconnects_chart(results["disconnects"], out / "disconnects.png")
        lines += ["## 3. Disconnect handling", "", *disconnects_table(results["disconnects"]), ""]
        lines += ["![Disconnect detection](disconnects.png)", ""]
    if results.get("churn"):
        churn_chart(results["churn"], out / "churn.png")
        lines += ["## 4. Churn", "", *churn_table(results["churn"]), "", "![RSS during churn](churn.png)", ""]
    if results.get("slow_consumers"):
        lines += ["## 5. Slow consumers", "", *slow_table(results["slow_consumers"]), ""]
    if results.get("idle"):
        lines += ["## 6. Idle connections", "", *idle_table(results["idle"]), ""]
    if results.get("errors"):
        lines += ["## Runs that failed", ""]
        lines += [f"- {e['scenario']}, {e['variant']}: {e['error']}" for e in results["errors"]]
    (out / "REPORT.md").write_text("\n".join(lines))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_report(json.loads((folder / "results.json").read_text()), folder)
