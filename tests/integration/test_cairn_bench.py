#!/usr/bin/env python3
"""cairn-bench against a real member: what it reports is what happened. A put run's requests are
in the store afterwards, its JSON report is consistent (ok = the timeline's buckets summed, p50 <=
p99 <= max), a linearizable and a serializable range run read back without errors, a txn-put run
succeeds, and a run against an endpoint nobody listens on says so and exits 1.

    python3 tests/integration/test_cairn_bench.py --cairn build/bin/cairn --bench build/bin/cairn-bench

Exit 0 on success, 1 on a failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BENCH = ""  # Set by main.
KEY_SPACE = 300
TIMELINE_MS = 250


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def bench(endpoints: str, *args: str, expect_rc: int = 0) -> dict:
    command = [BENCH, "--endpoints", endpoints, "--conns", "2", "--clients", "8", "--json",
               "--key-space", str(KEY_SPACE), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    check(done.returncode == expect_rc,
          f"{' '.join(args)}: exit status {done.returncode} (stderr: {done.stderr.strip()[:200]})")
    return json.loads(done.stdout)


def consistent(report: dict, what: str) -> None:
    check(report["p50_ms"] <= report["p99_ms"] <= report["max_ms"],
          f"{what}: p50 {report['p50_ms']} <= p99 {report['p99_ms']} <= max {report['max_ms']} ms")
    check(report["throughput"] > 0, f"{what}: {report['throughput']:.0f} requests/s")


def run(cluster: harness.Cluster) -> None:
    cluster.start()
    endpoints = cluster.endpoints().replace("http://", "")  # cairn-bench takes host:port.

    # A timed put run with a timeline: every completed request is in one bucket.
    put = bench(endpoints, "--workload", "put", "--duration", "1.5", "--sequential-keys",
                "--timeline-ms", str(TIMELINE_MS))
    check(put["errors"] == 0 and put["ok"] > KEY_SPACE,
          f"put: {put['ok']} ok, {put['errors']} errors")
    consistent(put, "put")
    timeline = put["timeline"]
    check(put["timeline_ms"] == TIMELINE_MS and 6 <= len(timeline) <= 8,
          f"put: {len(timeline)} buckets of {TIMELINE_MS} ms over 1.5 s")
    counted = round(sum(bucket[1] for bucket in timeline) * TIMELINE_MS / 1000)
    check(counted == put["ok"], f"put: the timeline counts {counted} requests, the report {put['ok']}")
    check([bucket[0] for bucket in timeline] == [i * TIMELINE_MS for i in range(len(timeline))],
          "put: buckets start every 250 ms from 0")
    check(all(b[2] <= b[3] <= b[4] and b[4] <= put["max_ms"] for b in timeline if b[1] > 0),
          "put: in every bucket p50 <= p99 <= max <= the run's max")
    # Sequential keys over the key space: every key was written, with the bench's value size.
    listed = cluster.etcdctl([0], "get", "", "--prefix", "--keys-only").stdout.split()
    check(len(listed) == KEY_SPACE, f"the store holds the {KEY_SPACE} keys the puts wrote")
    value = cluster.etcdctl([0], "get", listed[0], "--print-value-only").stdout.rstrip("\n")
    check(len(value) == 256, f"a written value has the default 256 bytes (has {len(value)})")

    # Counted runs of the read and compare-and-swap workloads.
    for workload in ("range", "range-serializable", "txn-put", "mixed"):
        report = bench(endpoints, "--workload", workload, "--total", "2000", "--duration", "0")
        check(report["ok"] == 2000 and report["errors"] == 0,
              f"{workload}: 2000 requests ok ({report['ok']} ok, {report['errors']} errors)")
        consistent(report, workload)
        check("timeline" not in report, f"{workload}: no timeline unless asked for")

    # Nobody listens: cairn-bench says so and exits 1, without a report.
    dead = f"127.0.0.1:{harness.free_port()}"
    done = subprocess.run([BENCH, "--endpoints", dead, "--json", "--total", "20", "--duration", "0"],
                          capture_output=True, text=True, timeout=60)
    check(done.returncode == 1 and "cannot connect" in done.stderr and not done.stdout,
          f"a dead endpoint: exit status {done.returncode}, {done.stderr.strip()[:80]}")


def main(argv=None) -> int:
    global BENCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    BENCH = a.bench
    return harness.run_on_cluster("cairn", 1, a.cairn, run, a.workdir, prefix="cairn-bench-")


if __name__ == "__main__":
    sys.exit(main())
