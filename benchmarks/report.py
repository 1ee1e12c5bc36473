"""``make bench``'s report: each client's median run, the tables as ratios, the targets of
issue 17, and the chart (``run.py`` runs the clients)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Issue 17's targets: aioproducer / peer records/s on the service workloads ("awaited" and
#: "handlers" at 100 B and 1 KiB).
TARGETS = {"aiokafka": 3.0, "confluent-aio": 1.5}
TARGET_MODES = ("awaited", "handlers")


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (workload, client): its median run (records/s; p50 for latency), with the
    range over all its runs in ``range``. A client whose every run failed keeps an error row;
    failed runs among good ones are counted in ``failed``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["workload"], r["client"]), []).append(r)
    out = []
    for group in groups.values():
        good = [r for r in group if "error" not in r]
        if not good:
            out.append(group[0])
            continue
        metric = "p50_ms" if "p50_ms" in good[0] else "records_per_s"
        good.sort(key=lambda r: r[metric])
        row = dict(good[(len(good) - 1) // 2] if metric == "p50_ms" else good[len(good) // 2])
        row["runs"], row["failed"] = len(good), len(group) - len(good)
        row["range"] = (good[0][metric], good[-1][metric])
        out.append(row)
    return out


def span(r: dict[str, Any], fmt: str = "{:,}") -> str:
    """The range of a median row's runs, as "lo to hi", or "" for a single run."""
    if r.get("runs", 1) < 2:
        return ""
    lo, hi = r["range"]
    failed = f", {r['failed']} failed" if r.get("failed") else ""
    return f"{fmt.format(lo)} to {fmt.format(hi)}{failed}"


def is_latency(rows: list[dict[str, Any]], workload: str) -> bool:
    return any(r["workload"] == workload and "p50_ms" in r for r in rows)


def throughput_workloads(rows: list[dict[str, Any]]) -> list[str]:
    return [
        w
        for w in dict.fromkeys(r["workload"] for r in rows if not r.get("scaling"))
        if not is_latency(rows, w)
    ]


def render(rows: list[dict[str, Any]], clients: list[str], rounds: int = 1) -> str:
    out = [
        f"Broker: {rows[0]['broker']} (one node on this machine unless the workload says 3 "
        f"nodes). Each figure is a client's median run of {rounds}, the clients' order rotated "
        "every round. Ratios are aioproducer / peer: > 1 means aioproducer is faster (or lower "
        "latency).\n"
    ]
    out.append(
        "| workload | client | records/s | range over runs | MB/s | ratio | "
        "loop lag p99 / max ms | CPU s | CPU us/record (send loop) | peak RSS MB |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in throughput_workloads(rows):
        ours = next((r for r in rows if r["workload"] == w and r["client"] == "aioproducer"), {})
        for r in (r for r in rows if r["workload"] == w):
            if "error" in r:
                out.append(f"| {w} | {r['client']} | error: {r['error']} | | | | | | | |")
                continue
            ratio = (
                (ours.get("records_per_s", 0) / r["records_per_s"])
                if r.get("records_per_s")
                else float("nan")
            )
            lag = f"{r['lag_p99_ms']} / {r['lag_max_ms']}" if "lag_p99_ms" in r else "n/a"
            out.append(
                f"| {w} | {r['client']} | {r['records_per_s']:,} | {span(r)} | "
                f"{r['mb_per_s']} | "
                f"{ratio:.2f}x | {lag} | {r.get('cpu_s', '')} | "
                f"{r.get('us_per_record', 'n/a')} | {r.get('peak_rss_mb', 'n/a')} |"
            )
    for w in (w for w in dict.fromkeys(r["workload"] for r in rows) if is_latency(rows, w)):
        out += latency_table(rows, w)
    out += targets(rows)
    scaling = [r for r in rows if r.get("scaling")]
    if scaling:
        out += scaling_table(scaling)
    return "\n".join(out) + "\n"


def latency_table(rows: list[dict[str, Any]], w: str) -> list[str]:
    out = [
        f"\n| {w} | p50 ms | p50 range | p99 ms | records/s | p50 ratio (peer / aioproducer) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lat = [r for r in rows if r["workload"] == w]
    ours = next((r for r in lat if r["client"] == "aioproducer"), {})
    for r in lat:
        if "error" in r:
            out.append(f"| {r['client']} | error: {r['error']} | | | | |")
            continue
        ratio = r["p50_ms"] / ours["p50_ms"] if ours.get("p50_ms") else float("nan")
        rate = f"{r['records_per_s']:,}" if "records_per_s" in r else ""
        out.append(
            f"| {r['client']} | {r['p50_ms']} | {span(r, '{}')} | {r['p99_ms']} | {rate} | "
            f"{ratio:.2f}x |"
        )
    return out


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 17's targets, each met or missed by how much, with the ratio's spread (our
    slowest run over the peer's fastest, to our fastest over its slowest)."""
    out = [
        "\n| target (issue 17) | workload | peer | ratio | spread over runs | target | verdict |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    found = False
    for w in throughput_workloads(rows):
        if not w.startswith(TARGET_MODES):
            continue
        ours = next((r for r in rows if r["workload"] == w and r["client"] == "aioproducer"), None)
        if ours is None or "error" in ours:
            continue
        for peer, goal in TARGETS.items():
            theirs = next((r for r in rows if r["workload"] == w and r["client"] == peer), None)
            if theirs is None or "error" in theirs:
                continue
            found = True
            ratio = ours["records_per_s"] / theirs["records_per_s"]
            lo_hi = ""
            if "range" in ours and "range" in theirs:
                lo = ours["range"][0] / theirs["range"][1]
                hi = ours["range"][1] / theirs["range"][0]
                lo_hi = f"{lo:.2f}x to {hi:.2f}x"
            verdict = (
                f"met (+{(ratio / goal - 1) * 100:.0f} %)"
                if ratio >= goal
                else f"missed by {(1 - ratio / goal) * 100:.0f} %"
            )
            out.append(
                f"| >= {goal}x {peer} | {w} | {peer} | {ratio:.2f}x | {lo_hi} | {goal}x | "
                f"{verdict} |"
            )
    return out if found else []


def scaling_table(scaling: list[dict[str, Any]]) -> list[str]:
    out = [
        "\n| scaling (100 B, acks=all) | client | records/s | CPU us/record | "
        "vs 1 partition x 1 topic |",
        "|---|---|---:|---:|---:|",
    ]
    base = {
        r["client"]: r.get("us_per_record")
        for r in scaling
        if r["workload"].endswith("1 partition(s) x 1 topic(s)")
    }
    for r in scaling:
        if "error" in r:
            out.append(f"| {r['workload']} | {r['client']} | error: {r['error']} | | |")
            continue
        b = base.get(r["client"])
        rel = f"{(r['us_per_record'] / b - 1) * 100:+.0f} %" if b else "n/a"
        out.append(
            f"| {r['workload'].removeprefix('scaling: ')} | {r['client']} | "
            f"{r['records_per_s']:,} | {r['us_per_record']} | {rel} |"
        )
    return out


def chart(rows: list[dict[str, Any]], clients: list[str], results: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart (pip install 'aioproducer[bench]')")
        return
    workloads = throughput_workloads(rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, 5))
    width = 0.8 / len(clients)
    for i, client in enumerate(clients):
        mine = {r["workload"]: r for r in rows if r["client"] == client}
        xs = [j + i * width for j in range(len(workloads))]
        ax1.bar(
            xs, [mine.get(w, {}).get("records_per_s", 0) for w in workloads], width, label=client
        )
        ax2.bar(xs, [mine.get(w, {}).get("lag_p99_ms", 0) for w in workloads], width, label=client)
    for ax, title in ((ax1, "throughput (records/s)"), (ax2, "event-loop lag p99 (ms)")):
        ax.set_xticks([j + 0.4 for j in range(len(workloads))])
        ax.set_xticklabels(workloads, rotation=25, ha="right", fontsize=7)
        ax.set_title(title)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "latest.png", dpi=100)
    print(f"chart: {results / 'latest.png'}")
