#!/usr/bin/env python3
"""A lone member is killed with SIGKILL while clients write; after a restart on the same data
directory every write it acknowledged is there. With one member nobody else holds a copy, so
this checks the member's own path: acknowledgement only after the LogWriter wrote the entry, and
recovery of the log's tail (torn records, a snapshot plus log). SIGKILL keeps the page cache, so
it cannot tell a missing fdatasync; the WAL crash tests (src/wal/wal_crash_test.cc) and the
simulator cover that. Three rounds, each killing at a different moment.

    python3 tests/integration/test_crash_durability.py --cairn build/bin/cairn

Exit 0 on success, 1 on a lost write or another failed check.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WRITERS = 4
ROUNDS = 3


def writer(cluster: harness.Cluster, round_number: int, number: int, stop: threading.Event,
           acked: dict, lock: threading.Lock) -> None:
    for n in range(100_000):
        if stop.is_set():
            return
        key = f"crash/r{round_number}/w{number}/{n:05d}"
        result = cluster.etcdctl([0], "put", key, f"v{n}", timeout=2, check=False)
        if result.returncode == 0:
            with lock:
                acked[key] = f"v{n}"


def run(cluster: harness.Cluster) -> None:
    cluster.start()
    total = 0
    for round_number in range(ROUNDS):
        stop = threading.Event()
        lock = threading.Lock()
        acked: dict[str, str] = {}
        threads = [threading.Thread(target=writer, args=(cluster, round_number, w, stop, acked, lock))
                   for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0 + 0.5 * round_number)
        cluster.kill(0)  # SIGKILL, mid-write.
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        with lock:
            snapshot = dict(acked)
        if not snapshot:
            raise AssertionError(f"round {round_number}: no write was acknowledged before the kill")
        cluster.restart(0)
        cluster.wait_ready()
        listing = cluster.etcdctl([0], "get", f"crash/r{round_number}/", "--prefix", timeout=10).stdout
        lines = listing.splitlines()
        present = dict(zip(lines[0::2], lines[1::2]))
        lost = [key for key, value in snapshot.items() if present.get(key) != value]
        if lost:
            raise AssertionError(f"round {round_number}: {len(lost)} acknowledged writes lost after "
                                 f"SIGKILL, e.g. {lost[:3]}")
        print(f"ok round {round_number}: {len(snapshot)} acknowledged writes all present after "
              f"SIGKILL and restart ({len(present)} keys in all)", flush=True)
        total += len(snapshot)
    print(f"ok {total} acknowledged writes survived {ROUNDS} kills")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    return harness.run_on_cluster("cairn", 1, a.cairn, run, a.workdir, prefix="cairn-crash-")


if __name__ == "__main__":
    sys.exit(main())
