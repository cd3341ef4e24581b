#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into docs/performance.md (tables, targets) and an SVG
chart of latency against load, direct vs through Keyward. Standard library only."""

import argparse
import json
import math


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    pairs = {}
    extra = {}
    for row in rows:
        if row["scenario"] in ("idle", "hold-2000", "ledger-check"):
            extra[row["scenario"]] = row
        else:
            pairs.setdefault(row["scenario"], {})[row["side"]] = row
    return pairs, extra


def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def added(pair, key):
    if "direct" in pair and "keyward" in pair:
        return pair["keyward"][key] - pair["direct"][key]
    return None


def svg_chart(pairs):
    loads = [s for s in ("chat-500", "chat-2000", "chat-5000", "chat-max") if s in pairs]
    width, height, left, bottom, top, right = 640, 360, 60, 50, 30, 150
    series = [
        ("direct p50", "direct", "p50_ms", "#7aa6da", "4 3"),
        ("direct p99", "direct", "p99_ms", "#1f5fa8", ""),
        ("Keyward p50", "keyward", "p50_ms", "#e7a35a", "4 3"),
        ("Keyward p99", "keyward", "p99_ms", "#c0561b", ""),
    ]
    values = [pairs[s][side][key] for s in loads for _, side, key, _, _ in series if side in pairs[s]]
    # Log scale: direct latencies are tenths of a millisecond, saturated ones seconds.
    low = 10 ** math.floor(math.log10(max(min(values + [0.1]), 0.01)))
    high = 10 ** math.ceil(math.log10(max(values + [1.0])))
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i):
        return left + (plot_w * i / max(len(loads) - 1, 1))

    def y(v):
        v = max(v, low)
        return top + plot_h - plot_h * (math.log10(v) - math.log10(low)) / (math.log10(high) - math.log10(low))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">Latency vs load, non-streaming chat (ms, log scale)</text>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>']
    v = low
    while v <= high * 1.0001:
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>')
        v *= 10
    for i, scenario in enumerate(loads):
        rate = pairs[scenario].get("keyward", pairs[scenario].get("direct"))
        label = "closed loop" if scenario == "chat-max" else f"{rate['rate']} req/s"
        out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>')
    for n, (name, side, key, colour, dash) in enumerate(series):
        points = [(x(i), y(pairs[s][side][key])) for i, s in enumerate(loads) if side in pairs[s]]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        for px, py in points:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        ly = top + 20 + n * 18
        out.append(f'<line x1="{width - right + 15}" y1="{ly}" x2="{width - right + 40}" y2="{ly}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{width - right + 46}" y="{ly + 4}">{name}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">offered load</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(pairs, extra, args):
    lines = ["# Performance", "",
             "Measured by `bench/run.sh` (one command; see the README). The same load goes straight to the",
             "mock provider and through Keyward in one run; the difference is Keyward's overhead with the",
             "full ledger (SQLite, and PostgreSQL in the `-postgres` rows; strict mode: a committed row before every upstream call), budgets and",
             "logging at info on.", "",
             f"- Machine: {args.machine}", f"- Pinning: {args.layout}",
             f"- Each step: {args.seconds} s (oha 1.16 for fixed-rate and closed-loop load; `bench/` tool for streams)",
             "- Command: `bench/run.sh`", "",
             "## Non-streaming and other surfaces", "",
             "| scenario | side | req/s | ok | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | Keyward CPU µs/req | ledger rows |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for scenario, pair in pairs.items():
        if scenario == "stream":
            continue
        for side in ("direct", "keyward"):
            if side not in pair:
                continue
            r = pair[side]
            lines.append(f"| {scenario} | {side} | {r['rps']:.0f} | {r['ok']} | {r['errors']} | {fmt(r['p50_ms'], 3)} | "
                         f"{fmt(r['p90_ms'], 3)} | {fmt(r['p99_ms'], 3)} | {fmt(r['p999_ms'], 3)} | "
                         f"{fmt(r.get('keyward_cpu_us_per_req'), 0)} | {r.get('ledger_rows') if r.get('ledger_rows') is not None else '–'} |")
        a50, a99, a999 = added(pair, "p50_ms"), added(pair, "p99_ms"), added(pair, "p999_ms")
        lines.append(f"| {scenario} | **added** | | | | **{fmt(a50, 3)}** | | **{fmt(a99, 3)}** | **{fmt(a999, 3)}** | | |")
    lines += ["", "![latency vs load](performance.svg)", ""]
    if "stream" in pairs:
        lines += ["## Streaming (16 concurrent streams)", "",
                  "| side | streams/s | TTFB p50 ms | TTFB p99 ms | TTFB p99.9 ms | total p50 ms | total p99 ms | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for side in ("direct", "keyward"):
            r = pairs["stream"].get(side)
            if r:
                t, w = r["ttfb_us"], r["total_us"]
                lines.append(f"| {side} | {r['rps']:.0f} | {t['p50']/1000:.3f} | {t['p99']/1000:.3f} | {t['p999']/1000:.3f} | "
                             f"{w['p50']/1000:.3f} | {w['p99']/1000:.3f} | {r['errors']} |")
        lines.append("")
    idle = extra.get("idle", {}).get("keyward_rss_kib")
    hold = extra.get("hold-2000", {})
    check = extra.get("ledger-check", {})
    lines += ["## Memory and ledger completeness", "",
              f"- Idle RSS after start: {fmt(idle / 1024 if idle else None, 1)} MiB.",
              f"- 2,000 streams opened at once (each ~1.2 s): {hold.get('completed', '–')} completed; RSS before "
              f"{fmt(hold['rss_before_kib'] / 1024 if hold else None, 1)} MiB, peak {fmt(hold['rss_peak_kib'] / 1024 if hold else None, 1)} MiB; "
              f"{hold.get('ledger_rows', '–')} ledger rows written.",
              f"- Ledger rows at the end: {check.get('ledger_rows', '–')}; calls the mock saw through Keyward: "
              f"{check.get('mock_calls_via_keyward', '–')} (every upstream call has its row).", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--machine", default="")
    parser.add_argument("--layout", default="")
    parser.add_argument("--seconds", default="")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--svg", required=True)
    parser.add_argument("--notes", default="bench/notes.md")
    args = parser.parse_args()
    pairs, extra = load(args.results)
    text = markdown(pairs, extra, args)
    for extra_section in (args.notes, "bench/knowledge.md", "bench/retrieval.md", "bench/console.md", "bench/traces.md"):
        try:
            text += "\n" + open(extra_section).read()
        except FileNotFoundError:
            pass
    open(args.markdown, "w").write(text)
    open(args.svg, "w").write(svg_chart(pairs))


if __name__ == "__main__":
    main()
