"""REPORT.md and its charts, from a results.json of benchmarks/run.py."""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def repeats(rows: list[Row]) -> list[int]:
    return sorted({row["repeat"] for row in rows})


def spread(values: list[float], digits: int = 0) -> str:
    """Median, and the range when there were several runs."""
    if not values:
        return "-"
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f}"
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f} to {max(values):,.{digits}f})"


GENERATOR_BUSY = 0.8  # share of its core past which the generator's own delays are in a latency
CHAPTERS = {"websockets": "chapter 3", "fastapi": "chapter 1", "channels": "chapter 2"}
ROOMS = {"bare": "bare room (§18)", "chat": "chat protocol", "naive": "naive server's room"}
# Chapter 2's cost ledger (scenario 2): what each server is, one layer of the Channels stack swapped at a time.
LEDGER = {
    "naive-channels": "naive consumer: daphne, Channels' dispatch (the hop), in-memory layer",
    "naive-channels/no-hop": "naive consumer, without the hop",
    "naive-channels/uvicorn": "naive consumer on uvicorn instead of daphne",
    "naive-channels/uvicorn/no-hop": "naive consumer on uvicorn, without the hop",
    "naive-channels/redis": "naive consumer, channels-redis's pub/sub layer instead of the in-memory one",
    "channels/hop": "chapter 2 with Channels' dispatch (the hop) back",
    "channels/channels-loop": "chapter 2 with Channels' consumer loop back (a task per message, and the hop)",
    "channels/channels-layer": "chapter 2 with Channels' in-memory layer back (its scans, a task per member)",
    "channels": "chapter 2: daphne, its consumer loop (no hop), its in-memory layer",
    "channels/uvicorn": "chapter 2's application on uvicorn instead of its daphne (without server.py's settings)",
    "channels/redis": "chapter 2 on Redis (one process)",
}


def server_name(variant: str) -> str:
    """How the report names a server: "chapter 1", "naive FastAPI", "picows reference"…"""
    if variant == "reference":
        return "picows reference"
    if variant.startswith("naive-"):
        return {"naive-fastapi": "naive FastAPI", "naive-channels": "naive Channels"}.get(variant, "naive websockets")
    name = variant.removesuffix("+redis")
    return CHAPTERS[name] + (", 2 processes on Redis" if variant.endswith("+redis") else "")


# The order of the tables' rows: the reference, then each chapter's naive server, bare room and chat, then the
# chapters on Redis; the ledger's in LEDGER's order.
ORDER = [
    ("reference", "bare"),
    *(row for name in CHAPTERS for row in ((f"naive-{name}", "naive"), (name, "bare"), (name, "chat"))),
    *((f"{name}+redis", "chat") for name in CHAPTERS),
    *((name, "naive" if name.startswith("naive-") else "chat") for name in LEDGER),
]


def rank(row: Row) -> int:
    key = (row["variant"], row["kind"])
    return ORDER.index(key) if key in ORDER else len(ORDER)


def closed_loops(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    """Each (server, room)'s closed-loop phases, one per run, with the run's error and failures, if any."""
    found: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in sorted(rows, key=rank):
        trouble = {"error": row.get("error"), "failures": row.get("failures", {})}
        phase = (
            {**row["phases"][0], **trouble} if row["phases"] else {**trouble, "error": trouble["error"] or "no results"}
        )
        found[(row["variant"], row["kind"])].append(phase)
    return found


def median_of(phases: list[Row], key: str) -> float:
    values = [phase[key] for phase in phases if phase.get(key) is not None]
    return statistics.median(values) if values else math.nan


def completeness(phases: list[Row]) -> str:
    """Delivered of expected over the runs, what was repeated or reordered, and what went wrong."""
    delivered, expected = (sum(phase.get(key, 0) for phase in phases) for key in ("delivered", "expected"))
    repeated, reordered = (sum(phase.get(key, 0) for phase in phases) for key in ("repeated", "reordered"))
    said = f"{delivered:,} of {expected:,}"
    if repeated or reordered:
        said += f", {repeated:,} repeated, {reordered:,} reordered"
    errors = sorted({phase["error"] for phase in phases if phase.get("error")})
    errors += sorted({f"{what}: {n}" for phase in phases for what, n in phase.get("failures", {}).items()})
    if errors:
        return f"{said} ✗ {'; '.join(errors)}"
    return said if all(phase.get("complete") for phase in phases) else f"{said} ✗"


def ratio(value: float, to: float) -> str:
    return f"{value / to:.2f}" if to and not math.isnan(to) and not math.isnan(value) else "-"


def capacity_table(rows: list[Row]) -> list[str]:
    """Scenario 1's closed loops: each server's saturation, against the reference and its chapter's naive server."""
    loops = closed_loops(rows)
    reference = median_of(loops.get(("reference", "bare"), []), "deliveries_per_s")
    columns = ["server", "room", "deliveries/s (median, range)", "to the reference", "to its naive server"]
    columns += ["server µs per delivery", "delivered of expected (all runs)", "server's / generator's CPU"]
    lines = header(columns)
    for (variant, kind), phases in loops.items():
        rate = median_of(phases, "deliveries_per_s")
        naive = median_of(loops.get((f"naive-{variant.removesuffix('+redis')}", "naive"), []), "deliveries_per_s")
        load, server = median_of(phases, "generator_cpu"), median_of(phases, "server_load")
        flag = (
            " ⚠ generator-bound"
            if sum(phase.get("generator_bound", False) for phase in phases) * 2 > len(phases)
            else ""
        )
        cells = [
            server_name(variant),
            ROOMS[kind],
            spread([phase["deliveries_per_s"] for phase in phases if "deliveries_per_s" in phase]),
            ratio(rate, reference),
            "-" if variant.startswith("naive-") else ratio(rate, naive),
            f"{median_of(phases, 'server_us_per_delivery'):.1f}",
            completeness(phases),
            f"{100 * server:.0f} % / {100 * load:.0f} %{flag}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def open_loops(rows: list[Row]) -> dict[tuple[str, str], dict[float, list[Row]]]:
    """Each (server, room)'s open-loop steps, by share of its closed loop's deliveries per second."""
    found: dict[tuple[str, str], dict[float, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in sorted(rows, key=rank):
        for phase in row["phases"][1:]:
            found[(row["variant"], row["kind"])][phase["share"]].append(phase)
    return found


def latency_table(rows: list[Row]) -> list[str]:
    """Scenario 1's open loops: delivery latency at fixed shares of each server's own saturation."""
    steps = open_loops(rows)
    shares = sorted({share for by_share in steps.values() for share in by_share})
    lines = header(["server", "room", *(f"at {100 * share:.0f} %: p50 / p99 / p99.9 ms" for share in shares)])
    for (variant, kind), by_share in steps.items():
        cells = [server_name(variant), ROOMS[kind]]
        for share in shares:
            phases = by_share.get(share, [])
            said = " / ".join(f"{median_of([p['latency_ms'] for p in phases], q):.1f}" for q in ("50", "99", "99.9"))
            if phases and not all(phase["complete"] for phase in phases):
                said += " ✗ incomplete"
            # For latency, a busy generator counts whatever the server did: its own queue is in the figures.
            if sum(phase["generator_cpu"] > GENERATOR_BUSY for phase in phases) * 2 > len(phases):
                said += " ⚠"
            cells.append(f"{said} ({median_of(phases, 'deliveries_per_s'):,.0f}/s)" if phases else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ledger_table(rows: list[Row]) -> list[str]:
    """Scenario 2: chapter 2's stack, one layer swapped at a time; µs per delivery against its own base."""
    loops = closed_loops(rows)
    base = {
        name: median_of(loops.get(key, []), "server_us_per_delivery")
        for name, key in (("naive", ("naive-channels", "naive")), ("chat", ("channels", "chat")))
    }
    lines = header(["what runs", "deliveries/s", "server µs per delivery", "µs against its base", "delivered"])
    for variant in LEDGER:
        kind = "naive" if variant.startswith("naive-") else "chat"
        if not (phases := loops.get((variant, kind), [])):
            continue
        us = median_of(phases, "server_us_per_delivery")
        own = base["naive" if kind == "naive" else "chat"]
        delta = "base" if variant in ("naive-channels", "channels") else f"{us - own:+.1f}"
        cells = [LEDGER.get(variant, variant), f"{median_of(phases, 'deliveries_per_s'):,.0f}", f"{us:.1f}", delta]
        lines.append("| " + " | ".join([*cells, completeness(phases)]) + " |")
    return lines


def capacity_chart(rows: list[Row], path: Path) -> None:
    """Deliveries per second at saturation, one bar per server and room (median of the runs)."""
    loops = closed_loops(rows)
    labels = [f"{server_name(variant)}, {ROOMS[kind]}" for variant, kind in loops]
    values = [median_of(phases, "deliveries_per_s") for phases in loops.values()]
    fig, axes = figure("Capacity: deliveries per second at saturation (closed loop)", "deliveries/s (log scale)", "")
    axes.barh(labels[::-1], values[::-1])
    axes.set_xscale("log")
    fig.set_size_inches(9, 0.35 * len(labels) + 1.5)
    save(fig, path)


def latency_load_chart(rows: list[Row], path: Path) -> None:
    """p99 delivery latency against the offered load, one line per server and room."""
    import matplotlib

    fig, axes = figure("p99 delivery latency against offered load (open loop)", "deliveries/s", "p99, ms (log)")
    fig.set_size_inches(11, 6)
    colors = [matplotlib.colormaps["tab20"](i / 20) for i in range(20)]  # 20 distinct colours, paired
    for i, ((variant, kind), by_share) in enumerate(open_loops(rows).items()):
        shares = sorted(by_share)
        xs = [median_of(by_share[share], "deliveries_per_s") for share in shares]
        ys = [median_of([phase["latency_ms"] for phase in by_share[share]], "99") for share in shares]
        label = f"{server_name(variant)}, {ROOMS[kind]}"
        axes.plot(xs, ys, marker="o", color=colors[i % len(colors)], label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, path)


def locust_ceiling_table(rows: list[Row]) -> list[str]:
    """Scenario 7: what one Locust process checks on its core, by user, at the last step of its ramp."""
    columns = ["Locust user", "server", "deliveries/s", "Locust's CPU", "server's CPU", "Locust µs per delivery"]
    lines = header([*columns, "Locust's ceiling, deliveries/s", "busy"])
    for row in rows:
        cells = [
            row["user"],
            server_name(row["variant"]),
            f"{row['deliveries_per_s']:,.0f}",
            f"{100 * row['load']:.0f} %",
        ]
        cells += [f"{100 * row['server_load']:.0f} %", f"{row['us_per_delivery']:.1f}"]
        # Measured when Locust was the busy one; extrapolated from its cost per delivery when the server was.
        said = f"{row['deliveries_per_s']:,.0f}" if "Locust" in row["bound"] else f"about {row['ceiling']:,.0f}"
        lines.append("| " + " | ".join([*cells, said, row["bound"] or "neither"]) + " |")
    return lines


def header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


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
    machine = results["machine"]
    lines = [
        f"# Benchmark report ({results['profile']})",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; servers on cores {machine['server_cores']}, "
        f"the load generators on {machine['generator_cores']}. Python {machine['python']}, Linux {machine['kernel']}.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in machine["versions"].items()) + ".",
        "",
        f"Load: {results['settings']}. Server settings: {results['chat_settings']}; "
        f"per scenario: {results.get('scenario_settings', {})}.",
        "",
        "How it was measured, and how to read it: [benchmarks/README.md](../../README.md).",
        "",
    ]
    if len(runs := results.get("runs", [])) > 1:
        said = "; ".join(f"scenarios {', '.join(run['scenarios'])} from {run['started']}" for run in runs)
        lines += [f"Runs merged into this report: {said}.", ""]
    if results["gated_out"]:
        lines += [f"Not benchmarked (the conformance smoke run failed): {', '.join(results['gated_out'])}.", ""]
    if rows := results.get("capacity"):
        capacity_chart(rows, out / "capacity.png")
        latency_load_chart(rows, out / "latency.png")
        lines += [
            "## 1. Capacity",
            "",
            "Closed loop (capacity.py, picows on uvloop): each member sends its next message when its own copy of the"
            " last one arrives. Deliveries per second and the server's CPU per delivery inside the measured window,"
            " the median of the runs (and their range); every delivery checked, nothing missing, repeated or"
            " reordered, or the row says ✗. A row measured while the generator used more than"
            " 80 % of its core while the server used less than 90 % of its own is flagged ⚠ generator-bound: the"
            " server may carry more. (The reference's row is the generator's own ceiling, or near it.)",
            "",
            *capacity_table(rows),
            "",
            "![Capacity](capacity.png)",
            "",
            "Open loop: fixed offered rates, as shares of each server's own closed-loop figure above; latency from"
            " the moment each message was due to its delivery, every delivery of the window (median of the runs;"
            " ⚠: the generator used more than 80 % of its core in most runs, and its own delays are in the"
            " figures).",
            "",
            *latency_table(rows),
            "",
            "![Latency against offered load](latency.png)",
            "",
        ]
    if rows := results.get("ledger"):
        lines += [
            "## 2. Chapter 2's cost ledger",
            "",
            "Closed loop, as in scenario 1: the Channels stack with one layer swapped at a time"
            " (channels_stack.py), each line against its base (the naive consumer, or chapter 2 as it ships).",
            "",
            *ledger_table(rows),
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
    if results.get("locust_ceiling"):
        lines += [
            "## 7. Locust's own ceiling",
            "",
            "What one Locust process (scenarios 3-6, `make bench-ui`) checks per second on its core, each user"
            " against the fastest server it can speak to, stepped up until Locust or the server is busy (90 % of"
            " its core). Where the server is busy first, Locust's ceiling is extrapolated from its CPU per delivery.",
            "",
            *locust_ceiling_table(results["locust_ceiling"]),
            "",
        ]
    if results.get("errors"):
        lines += ["## Runs that failed", ""]
        lines += [f"- {e['scenario']}, {e['variant']}: {e['error']}" for e in results["errors"]]
    (out / "REPORT.md").write_text("\n".join(lines))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_report(json.loads((folder / "results.json").read_text()), folder)
