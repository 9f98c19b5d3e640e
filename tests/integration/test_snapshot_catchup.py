#!/usr/bin/env python3
"""Low-Water Mark over TCP: with --snapshot-count=40 the leader compacts its log every 40 entries,
so a follower that was down while 250 writes happened can only catch up from the leader's
snapshot (sent in chunks over the peer channel). Checks that the restarted follower serves every
key (serializable reads on it), that members restarted on their own snapshot + log recover
everything, and that the snapshot counter moved.

    python3 tests/integration/test_snapshot_catchup.py --cairn build/bin/cairn

Exit 0 on success, 1 on a failed check.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WRITES = 250


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print(f"ok {what}", flush=True)


def metric(cluster: harness.Cluster, i: int, name: str) -> float:
    with urllib.request.urlopen(cluster.members[i].metrics_url + "/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"m{i} /metrics has no {name}")


def all_keys_on(cluster: harness.Cluster, i: int, timeout_s: float = 20) -> bool:
    """Member i's own (serializable) view holds every written key, within timeout_s."""
    deadline = time.monotonic() + timeout_s
    for _ in range(400):
        result = cluster.etcdctl([i], "get", "snap/", "--prefix", "--keys-only",
                                 "--consistency=s", timeout=3, check=False)
        keys = {line for line in result.stdout.splitlines() if line.startswith("snap/")}
        if len(keys) == WRITES:
            return True
        if time.monotonic() >= deadline:
            print(f"  m{i} holds {len(keys)} of {WRITES} keys", file=sys.stderr)
            return False
        time.sleep(0.1)
    return False


def run(cluster: harness.Cluster) -> None:
    cluster.start()
    leader = cluster.leader_index()
    follower = next(i for i in range(cluster.size) if i != leader)
    cluster.kill(follower)
    check(not cluster.member_alive(follower), f"follower m{follower} killed")
    survivors = [i for i in range(cluster.size) if i != follower]
    # One entry per put: 250 entries move the log past six snapshot points.
    for n in range(WRITES):
        cluster.etcdctl([survivors[n % len(survivors)]], "put", f"snap/{n:04d}", f"value-{n}",
                        timeout=5)
    check(metric(cluster, leader, "cairn_snapshots_saved_total") >= 5,
          f"leader m{leader} took snapshots (count {metric(cluster, leader, 'cairn_snapshots_saved_total'):.0f})")
    cluster.restart(follower)
    cluster.wait_ready(members=[follower])
    check(all_keys_on(cluster, follower), f"m{follower} caught up")
    with open(cluster.members[follower].log_path) as log:
        check("installed the leader's snapshot" in log.read(),
              f"m{follower} caught up from the leader's snapshot, sent over the peer channel")
    value = cluster.etcdctl([follower], "get", "snap/0123", "--print-value-only",
                            "--consistency=s").stdout.strip()
    check(value == "value-123", "values arrived with the snapshot")
    # Every member's value log holds exactly the values written (the follower's rebuilt from the
    # snapshot and the log after it); metrics are refreshed each member turn.
    expected = sum(len(f"value-{n}") for n in range(WRITES))
    deadline = time.monotonic() + 5
    while (metric(cluster, follower, "cairn_mvcc_value_log_live_bytes") != expected
           and time.monotonic() < deadline):
        time.sleep(0.1)
    for i in range(cluster.size):
        live = metric(cluster, i, "cairn_mvcc_value_log_live_bytes")
        check(live == expected, f"m{i} holds {expected} value bytes in its value log (has {live:.0f})")
    # Every member restarts on its own snapshot + log tail and still holds everything.
    for i in range(cluster.size):
        cluster.kill(i, harness.signal.SIGTERM)
    for i in range(cluster.size):
        cluster.restart(i)
    cluster.wait_ready()
    for i in range(cluster.size):
        check(all_keys_on(cluster, i), f"m{i} recovered every key from its snapshot and log")
    revision = cluster.etcdctl([0], "put", "snap/after", "x", "-w", "json").stdout
    check('"revision":' + str(WRITES + 2) in revision,
          f"the revision continues at {WRITES + 2} after recovery")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    return harness.run_on_cluster("cairn", 3, a.cairn, run, a.workdir, prefix="cairn-snap-",
                                  snapshot_count=40)


if __name__ == "__main__":
    sys.exit(main())
