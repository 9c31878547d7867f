#!/usr/bin/env python3
# File: bench/bench_report.py — the bookkeeping of run_ingest_bench.sh: turns one timed run
# (GNU time -v output, plus mb_ingest_bench's JSON line for mailbridge) into a JSON record,
# and a file of records into the Markdown table of docs/performance.md (medians per tool
# and mailbox size).
"""Usage:
  bench_report.py record --tool T --size N --run R --time-file F --mailbox-bytes B
                         [--driver-json F] [--messages M]        (prints one JSON line)
  bench_report.py table RUNS.jsonl                                (prints Markdown)
"""
import argparse
import json
import re
import statistics
import sys


def parse_gnu_time(text):
    """Wall seconds, peak RSS (KiB) and exit status from `/usr/bin/time -v` output."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    status = re.search(r"Exit status: (\d+)", text)
    cpu_user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    cpu_sys = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if not wall or not rss:
        raise ValueError("not GNU time -v output")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {"wall_s": seconds, "peak_rss_kib": int(rss.group(1)),
            "exit": int(status.group(1)) if status else 0,
            "cpu_s": float(cpu_user.group(1)) + float(cpu_sys.group(1))}


def record(args):
    with open(args.time_file, encoding="utf-8", errors="replace") as f:
        rec = parse_gnu_time(f.read())
    rec.update({"tool": args.tool, "size": args.size, "run": args.run,
                "mailbox_bytes": args.mailbox_bytes, "messages": args.messages})
    if args.driver_json:
        with open(args.driver_json, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
        driver = json.loads(lines[-1]) if lines else {"error": "no JSON line"}
        rec["driver"] = driver
        rec["messages"] = driver.get("messages", 0)
        if "error" in driver:
            rec["exit"] = rec["exit"] or 1
    print(json.dumps(rec))


def fmt_row(tool, size, runs):
    ok = [r for r in runs if r["exit"] == 0]
    if not ok:
        return f"| {tool} | {size} | — | failed ({len(runs)} runs) | — | — | — | — |"
    wall = statistics.median(r["wall_s"] for r in ok)
    rss = statistics.median(r["peak_rss_kib"] for r in ok) / 1024
    msgs = statistics.median(r["messages"] for r in ok)
    mb = ok[0]["mailbox_bytes"] / 1e6
    cpu = statistics.median(r["cpu_s"] for r in ok)
    spread = f"{min(r['wall_s'] for r in ok):.1f}–{max(r['wall_s'] for r in ok):.1f}"
    return (f"| {tool} | {size} | {int(msgs)} | {wall:.2f} ({spread}) | {msgs / wall:.0f} | "
            f"{mb / wall:.1f} | {cpu:.1f} | {rss:.1f} |")


def table(args):
    with open(args.runs, encoding="utf-8") as f:
        runs = [json.loads(ln) for ln in f if ln.strip()]
    groups = {}
    for r in runs:
        groups.setdefault((r["size"], r["tool"]), []).append(r)
    print("| tool | mailbox (messages) | messages done | wall s, median (min–max) | msgs/s | "
          "MB/s | CPU s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    order = {"mbsync": 0, "mbsync_nofsync": 1, "mailbridge": 2}
    for (size, tool) in sorted(groups, key=lambda k: (-k[0], order.get(k[1], 3), k[1])):
        print(fmt_row(tool, size, groups[(size, tool)]))
    sizes = sorted({s for s, _ in groups}, reverse=True)
    if len(sizes) == 2:
        print()
        for tool in sorted({t for _, t in groups}, key=lambda t: order.get(t, 3)):
            big, small = groups.get((sizes[0], tool)), groups.get((sizes[1], tool))
            if big and small and all(r["exit"] == 0 for r in big + small):
                rb = statistics.median(r["peak_rss_kib"] for r in big)
                rs = statistics.median(r["peak_rss_kib"] for r in small)
                print(f"- {tool}: peak RSS at {sizes[0]} messages is {rb / rs:.2f}× "
                      f"that at {sizes[1]}.")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--tool", required=True)
    r.add_argument("--size", type=int, required=True)
    r.add_argument("--run", required=True)
    r.add_argument("--time-file", required=True)
    r.add_argument("--mailbox-bytes", type=int, required=True)
    r.add_argument("--messages", type=int, default=0)
    r.add_argument("--driver-json")
    t = sub.add_parser("table")
    t.add_argument("runs")
    args = ap.parse_args()
    try:
        record(args) if args.cmd == "record" else table(args)
    except (OSError, ValueError) as e:
        print(f"bench_report.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
