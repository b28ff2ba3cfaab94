"""REPORT.md and its charts, from a results.json of benchmarks/run.py."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from rows import (
    CAPACITY_ROWS,
    LEDGER_ROWS,
    CapacityRow,
    CeilingRow,
    ChurnRow,
    Counts,
    DisconnectRow,
    IdleRow,
    Percentiles,
    PhaseResult,
    Results,
    SlowRow,
)

R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


def grouped(rows: Iterable[R], key: Callable[[R], K], order: Callable[[K], Any] | None = None) -> dict[K, list[R]]:
    """``rows`` by ``key`` (each group in the rows' order), the groups sorted by ``order`` of their keys (by the
    keys themselves without it; keys that tie in the order of their first row)."""
    groups: dict[K, list[R]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    ranked: Callable[[K], Any] = order or (lambda key: key)
    return dict(sorted(groups.items(), key=lambda group: ranked(group[0])))


def table(columns: list[str], lines: Iterable[list[str]]) -> list[str]:
    """A Markdown table: a header of ``columns``, then one line of cells for each of ``lines``."""
    return ["| " + " | ".join(cells) + " |" for cells in [columns, ["---"] * len(columns), *lines]]


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
# Chapter 2's cost ledger (scenario 2): what each server is, one layer of the Channels stack swapped at a time;
# each is measured against its base, the naive consumer or chapter 2 as it ships.
BASES = ("naive-channels", "channels")
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


# The order of the capacity tables' rows: scenario 1's, then the ledger's.
ORDER = [*CAPACITY_ROWS, *LEDGER_ROWS]
Server = tuple[str, str]  # a server (its variant) and the room the generator spoke to on it (its kind)


def by_server(rows: list[CapacityRow]) -> dict[Server, list[CapacityRow]]:
    """Each (server, room)'s runs, in ``ORDER``."""
    return grouped(
        rows,
        key=lambda row: (row.variant, row.kind),
        order=lambda server: ORDER.index(server) if server in ORDER else len(ORDER),
    )


def closed_loops(runs: list[CapacityRow]) -> list[PhaseResult]:
    """The runs' closed loops (a run that failed before its closed loop ended has none)."""
    return [run.phases[0] for run in runs if run.phases]


def median_of(values: Iterable[float | None]) -> float:
    """The median of the values measured (None: not measured); NaN if none was."""
    measured = [value for value in values if value is not None]
    return statistics.median(measured) if measured else math.nan


def saturation(runs: list[CapacityRow]) -> float:
    """Deliveries per second in the runs' closed loops (median)."""
    return median_of(phase.deliveries_per_s for phase in closed_loops(runs))


def server_us(runs: list[CapacityRow]) -> float:
    """The server's CPU µs per delivery in the runs' closed loops (median)."""
    return median_of(phase.server_us_per_delivery for phase in closed_loops(runs))


def completeness(runs: list[CapacityRow]) -> str:
    """Delivered of expected in the runs' closed loops, what was repeated or reordered, and what went wrong."""
    phases = closed_loops(runs)
    delivered, expected = sum(phase.delivered for phase in phases), sum(phase.expected for phase in phases)
    repeated, reordered = sum(phase.repeated for phase in phases), sum(phase.reordered for phase in phases)
    said = f"{delivered:,} of {expected:,}"
    if repeated or reordered:
        said += f", {repeated:,} repeated, {reordered:,} reordered"
    errors = sorted({run.error or "no results" for run in runs if run.error or not run.phases})
    errors += sorted({f"{what}: {n}" for run in runs for what, n in run.failures.items()})
    if errors:
        return f"{said} ✗ {'; '.join(errors)}"
    return said if len(phases) == len(runs) and all(phase.complete for phase in phases) else f"{said} ✗"


def ratio(value: float, to: float) -> str:
    return f"{value / to:.2f}" if to and not math.isnan(to) and not math.isnan(value) else "-"


def capacity_table(rows: list[CapacityRow]) -> list[str]:
    """Scenario 1's closed loops: each server's saturation, against the reference and its chapter's naive server."""
    servers = by_server(rows)
    reference = saturation(servers.get(("reference", "bare"), []))
    columns = ["server", "room", "deliveries/s (median, range)", "to the reference", "to its naive server"]
    columns += ["server µs per delivery", "delivered of expected (all runs)", "server's / generator's CPU"]
    lines = []
    for (variant, kind), runs in servers.items():
        phases = closed_loops(runs)
        rate = saturation(runs)
        naive = saturation(servers.get((f"naive-{variant.removesuffix('+redis')}", "naive"), []))
        load, server = median_of(p.generator_cpu for p in phases), median_of(p.server_load for p in phases)
        flag = " ⚠ generator-bound" if sum(phase.generator_bound for phase in phases) * 2 > len(runs) else ""
        lines.append(
            [
                server_name(variant),
                ROOMS[kind],
                spread([phase.deliveries_per_s for phase in phases]),
                ratio(rate, reference),
                "-" if variant.startswith("naive-") else ratio(rate, naive),
                f"{server_us(runs):.1f}",
                completeness(runs),
                f"{100 * server:.0f} % / {100 * load:.0f} %{flag}",
            ]
        )
    return table(columns, lines)


def open_loops(rows: list[CapacityRow]) -> dict[Server, dict[float, list[PhaseResult]]]:
    """Each (server, room)'s open-loop steps, by share of its closed loop's deliveries per second."""
    steps = {
        server: grouped((phase for run in runs for phase in run.phases[1:]), key=lambda phase: phase.share or 0.0)
        for server, runs in by_server(rows).items()
    }
    return {server: by_share for server, by_share in steps.items() if by_share}


def latency_table(rows: list[CapacityRow]) -> list[str]:
    """Scenario 1's open loops: delivery latency at fixed shares of each server's own saturation."""
    steps = open_loops(rows)
    shares = sorted({share for by_share in steps.values() for share in by_share})
    lines = []
    for (variant, kind), by_share in steps.items():
        cells = [server_name(variant), ROOMS[kind]]
        for share in shares:
            phases = by_share.get(share, [])
            said = " / ".join(f"{median_of(p.latency_ms[q] for p in phases):.1f}" for q in ("50", "99", "99.9"))
            if phases and not all(phase.complete for phase in phases):
                said += " ✗ incomplete"
            # For latency, a busy generator counts whatever the server did: its own queue is in the figures.
            if sum(phase.generator_cpu > GENERATOR_BUSY for phase in phases) * 2 > len(phases):
                said += " ⚠"
            rate = median_of(phase.deliveries_per_s for phase in phases)
            cells.append(f"{said} ({rate:,.0f}/s)" if phases else "-")
        lines.append(cells)
    return table(["server", "room", *(f"at {100 * share:.0f} %: p50 / p99 / p99.9 ms" for share in shares)], lines)


def ledger_table(rows: list[CapacityRow]) -> list[str]:
    """Scenario 2: chapter 2's stack, one layer swapped at a time; µs per delivery against its own base."""
    servers = by_server(rows)
    base = {kind: server_us(servers.get((variant, kind), [])) for variant, kind in LEDGER_ROWS if variant in BASES}
    lines = []
    for variant, kind in LEDGER_ROWS:
        if not (runs := servers.get((variant, kind))):
            continue
        us = server_us(runs)
        delta = "base" if variant in BASES else f"{us - base[kind]:+.1f}"
        cells = [LEDGER.get(variant, variant), f"{saturation(runs):,.0f}", f"{us:.1f}", delta, completeness(runs)]
        lines.append(cells)
    return table(["what runs", "deliveries/s", "server µs per delivery", "µs against its base", "delivered"], lines)


def capacity_chart(rows: list[CapacityRow], path: Path) -> None:
    """Deliveries per second at saturation, one bar per server and room (median of the runs)."""
    servers = by_server(rows)
    labels = [f"{server_name(variant)}, {ROOMS[kind]}" for variant, kind in servers]
    values = [saturation(runs) for runs in servers.values()]
    fig, axes = figure("Capacity: deliveries per second at saturation (closed loop)", "deliveries/s (log scale)", "")
    axes.barh(labels[::-1], values[::-1])
    axes.set_xscale("log")
    fig.set_size_inches(9, 0.35 * len(labels) + 1.5)
    save(fig, path)


def latency_load_chart(rows: list[CapacityRow], path: Path) -> None:
    """p99 delivery latency against the offered load, one line per server and room."""
    import matplotlib

    fig, axes = figure("p99 delivery latency against offered load (open loop)", "deliveries/s", "p99, ms (log)")
    fig.set_size_inches(11, 6)
    colors = [matplotlib.colormaps["tab20"](i / 20) for i in range(20)]  # 20 distinct colours, paired
    for i, ((variant, kind), by_share) in enumerate(open_loops(rows).items()):
        shares = sorted(by_share)
        xs = [median_of(phase.deliveries_per_s for phase in by_share[share]) for share in shares]
        ys = [median_of(phase.latency_ms["99"] for phase in by_share[share]) for share in shares]
        label = f"{server_name(variant)}, {ROOMS[kind]}"
        axes.plot(xs, ys, marker="o", color=colors[i % len(colors)], label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, path)


def locust_ceiling_table(rows: list[CeilingRow]) -> list[str]:
    """Scenario 7: what one Locust process checks on its core, by user, at the last step of its ramp."""
    columns = ["Locust user", "server", "deliveries/s", "Locust's CPU", "server's CPU", "Locust µs per delivery"]
    lines = []
    for row in rows:
        step = row.last
        # Measured when Locust was the busy one; extrapolated from its cost per delivery when the server was.
        said = f"{step.deliveries_per_s:,.0f}" if "Locust" in step.bound else f"about {step.ceiling:,.0f}"
        cells = [step.user, server_name(row.variant), f"{step.deliveries_per_s:,.0f}", f"{100 * step.load:.0f} %"]
        cells += [f"{100 * step.server_load:.0f} %", f"{step.us_per_delivery:.1f}", said, step.bound or "neither"]
        lines.append(cells)
    return table([*columns, "Locust's ceiling, deliveries/s", "busy"], lines)


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


WAYS = ("clean", "vanish", "silent")


def by_way(rows: list[DisconnectRow]) -> dict[tuple[str, str], list[DisconnectRow]]:
    """Each (server, way of leaving)'s runs, by server, then in ``WAYS``' order."""
    return grouped(rows, key=lambda row: (row.variant, row.way), order=lambda key: (key[0], WAYS.index(key[1])))


def disconnects_chart(rows: list[DisconnectRow], path: Path) -> None:
    """Median time until every member heard a leave, by way of leaving."""
    groups = by_way(rows)
    variants = sorted({variant for variant, _ in groups})
    fig, axes = figure("Time until every member heard the leave (median)", "", "ms (log scale)")
    series = {
        way: [median(run.heard_by_all_ms["50"] for run in groups.get((variant, way), [])) for variant in variants]
        for way in WAYS
    }
    bars(axes, variants, series)
    axes.set_yscale("log")
    save(fig, path)


def churn_chart(rows: list[ChurnRow], path: Path) -> None:
    """The server's RSS over a churn run (the first repeat of each server)."""
    fig, axes = figure("Server RSS during churn", "seconds", "RSS, MB (all of the server's processes)")
    for row in rows:
        if row.repeat == 0:
            xs, ys = zip(*row.rss_timeline, strict=True)
            axes.plot(xs, ys, label=row.variant)
    axes.legend()
    save(fig, path)


def disconnects_table(rows: list[DisconnectRow]) -> list[str]:
    """Scenario 3, one line per server and way of leaving; times are medians over the runs."""
    lines = []
    for (variant, way), runs in by_way(rows).items():
        heard = median_and_max([run.heard_by_all_ms for run in runs])
        back = median_and_max([run.connections_back_ms for run in runs])
        survivors = f"{sum(r.survivors_delivered for r in runs)} / {sum(r.missing for r in runs)}"
        survivors += f" / {sum(r.repeated_or_reordered for r in runs)}"
        if not all(run.complete for run in runs):
            survivors += " ⚠ incomplete"
        codes = listed(total(run.leaver_codes for run in runs))
        failures = listed(total(run.failures for run in runs)) or "none"
        leaves = sum(run.leaves for run in runs)
        lines.append([variant, f"{way} ({leaves})", heard, back, survivors, codes, failures])
    columns = ["server", "way of leaving (leaves)", "heard by every member, ms: median (max)"]
    columns += ["chat_connections back, ms: median (max)", "survivors: delivered / missed / repeated"]
    return table([*columns, "the leaver saw", "failures"], lines)


def churn_table(rows: list[ChurnRow]) -> list[str]:
    """Scenario 4, one line per server."""
    lines = []
    for variant, runs in grouped(rows, key=lambda row: row.variant).items():
        rate = spread([run.cycles_per_s for run in runs])
        failures = listed(total(run.failures for run in runs)) or "none"
        left = max(run.connections_left for run in runs)
        rss = [median(r.rss_before_mb for r in runs), median(r.rss_half_mb for r in runs)]
        rss += [median(r.rss_end_mb for r in runs)]
        growth = spread([run.rss_end_mb - run.rss_half_mb for run in runs], digits=1)
        cells = [variant, str(sum(run.cycles for run in runs)), rate, p50_p99([run.cycle_ms for run in runs])]
        lines.append([*cells, failures, f"{left:g}", " → ".join(f"{mb:.0f}" for mb in rss), growth])
    columns = ["server", "cycles", "cycles/s", "cycle p50 / p99 ms", "failures", "connections left"]
    return table([*columns, "RSS MB: start → half-way → end", "RSS growth in the second half, MB"], lines)


def slow_table(rows: list[SlowRow]) -> list[str]:
    """Scenario 5, one line per server: the same load with and without the slow readers."""
    lines = []
    for variant, runs in grouped(rows, key=lambda row: row.variant).items():
        without, with_ = [r for r in runs if not r.slow_readers], [r for r in runs if r.slow_readers]
        if not without or not with_:
            continue
        p99 = f"{median(r.delivery_ms['99'] for r in without):.1f} / {median(r.delivery_ms['99'] for r in with_):.1f}"
        healthy = f"{sum(r.delivered for r in with_)} of {sum(r.expected for r in with_)},"
        healthy += f" {sum(r.missing for r in with_)}, {sum(r.repeated_or_reordered for r in with_)}"
        if not all(run.complete for run in with_ + without):
            healthy += " ⚠ incomplete"
        codes = listed(total(run.slow_codes for run in with_)) or "not closed"
        closed = f"{median(run.closed_after_s for run in with_):.1f}"
        resumed = f"{sum(r.slow_resumed for r in with_)} of {sum(r.slow_readers for r in with_)}"
        failures = listed(total(run.failures for run in with_ + without)) or "none"
        rss = f"{max(r.peak_rss_mb for r in without):.0f} / {max(r.peak_rss_mb for r in with_):.0f}"
        lines.append([variant, p99, healthy, codes, closed, resumed, failures, rss])
    columns = ["server", "healthy p99 ms without / with slow readers"]
    columns += ["healthy: delivered of expected, missed, repeated", "slow readers closed with"]
    return table([*columns, "closed after s (median)", "resumed", "failures", "peak RSS MB without / with"], lines)


def idle_table(rows: list[IdleRow]) -> list[str]:
    """Scenario 6, one line per server and number of connections."""
    groups = grouped(rows, key=lambda row: (row.variant, row.connections))
    lines = []
    for (variant, count), runs in groups.items():
        smaller = [c for v, c in groups if v == variant and c < count]
        marginal = "-"
        if smaller:  # first-request setup (imports, caches) cancels out
            below = groups[(variant, max(smaller))]
            sizes = [median(run.rss_mb for run in group) for group in (below, runs)]
            connected = [median(run.connected for run in group) for group in (below, runs)]
            marginal = f"{(sizes[1] - sizes[0]) * 1024 / max(connected[1] - connected[0], 1):.1f}"
        reached = "" if all(run.all_connected for run in runs) else " (not all connected)"
        rss = f"{median(r.rss_before_mb for r in runs):.0f} → {median(r.rss_mb for r in runs):.0f}"
        per = spread([run.kb_per_connection for run in runs], digits=1)
        failures = listed(total(run.failures for run in runs)) or "none"
        connect = p50_p99([run.connect_ms for run in runs])
        lines.append([variant, f"{count}{reached}", rss, per, marginal, connect, failures])
    columns = ["server", "idle connections", "RSS MB before → with them", "KB per connection"]
    columns += ["KB per added connection, from the smaller count"]
    return table([*columns, "connect p50 / p99 ms (while 100 more connect per second)", "failures"], lines)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def p50_p99(times: list[Percentiles]) -> str:
    """The median of the runs' medians and of their p99s, ms."""
    return f"{median(t['50'] for t in times):.1f} / {median(t['99'] for t in times):.1f}"


def median_and_max(times: list[Percentiles]) -> str:
    """The median of the runs' medians, and the largest of their maxima."""
    return f"{ms(median(t['50'] for t in times))} ({ms(max(t['100'] for t in times))})"


def ms(value: float) -> str:
    """Milliseconds with a resolution that fits them (histogram.py's buckets are 2 % wide)."""
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def listed(counts: Counts) -> str:
    """Counts as "name: n, name: n" ("" for none)."""
    return ", ".join(f"{name}: {n}" for name, n in counts.items())


def total(counts: Iterable[Counts]) -> Counts:
    """Counts (close codes, failures) added up over the runs, by name."""
    added: Counts = {}
    for run in counts:
        for name, n in run.items():
            added[name] = added.get(name, 0) + n
    return dict(sorted(added.items()))


def write_report(results: Results, out: Path) -> None:
    machine = results.machine
    lines = [
        f"# Benchmark report ({results.profile})",
        "",
        f"Machine: {machine.cpu}, {machine.cores} cores; servers on cores {machine.server_cores}, "
        f"the load generators on {machine.generator_cores}. Python {machine.python}, Linux {machine.kernel}.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in machine.versions.items()) + ".",
        "",
        f"Load: {results.settings}. Server settings: {results.chat_settings}; "
        f"per scenario: {results.scenario_settings}.",
        "",
        "How it was measured, and how to read it: [benchmarks/README.md](../../README.md).",
        "",
    ]
    if len(results.runs) > 1:
        said = "; ".join(f"scenarios {', '.join(run.scenarios)} from {run.started}" for run in results.runs)
        lines += [f"Runs merged into this report: {said}.", ""]
    if results.gated_out:
        lines += [f"Not benchmarked (the conformance smoke run failed): {', '.join(results.gated_out)}.", ""]
    if rows := results.capacity:
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
    if results.ledger:
        lines += [
            "## 2. Chapter 2's cost ledger",
            "",
            "Closed loop, as in scenario 1: the Channels stack with one layer swapped at a time"
            " (channels_stack.py), each line against its base (the naive consumer, or chapter 2 as it ships).",
            "",
            *ledger_table(results.ledger),
            "",
        ]
    if results.disconnects:
        disconnects_chart(results.disconnects, out / "disconnects.png")
        lines += ["## 3. Disconnect handling", "", *disconnects_table(results.disconnects), ""]
        lines += ["![Disconnect detection](disconnects.png)", ""]
    if results.churn:
        churn_chart(results.churn, out / "churn.png")
        lines += ["## 4. Churn", "", *churn_table(results.churn), "", "![RSS during churn](churn.png)", ""]
    if results.slow_consumers:
        lines += ["## 5. Slow consumers", "", *slow_table(results.slow_consumers), ""]
    if results.idle:
        lines += ["## 6. Idle connections", "", *idle_table(results.idle), ""]
    if results.locust_ceiling:
        lines += [
            "## 7. Locust's own ceiling",
            "",
            "What one Locust process (scenarios 3-6, `make bench-ui`) checks per second on its core, each user"
            " against the fastest server it can speak to, stepped up until Locust or the server is busy (90 % of"
            " its core). Where the server is busy first, Locust's ceiling is extrapolated from its CPU per delivery.",
            "",
            *locust_ceiling_table(results.locust_ceiling),
            "",
        ]
    if results.errors:
        lines += ["## Runs that failed", ""]
        lines += [f"- {e.scenario}, {e.variant}: {e.error}" for e in results.errors]
    (out / "REPORT.md").write_text("\n".join(lines))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_report(Results.load(folder / "results.json"), folder)
