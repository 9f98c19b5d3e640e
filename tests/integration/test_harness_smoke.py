#!/usr/bin/env python3
"""Smoke test of the harness's member control against a 3-member cluster: find the leader,
SIGKILL it, see a new leader elected and writes go on, restart the old leader on its data dir and
see it catch up; then SIGTERM a follower and restart it too.

    python3 tests/integration/test_harness_smoke.py                       # etcd
    python3 tests/integration/test_harness_smoke.py --kind cairn --binary build/bin/cairn

Exit status 0 on success, 1 on a failed check (member log tails are printed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def eventually_serializable(c: harness.Cluster, i: int, key: str, want: str,
                            timeout_s: float = 10) -> bool:
    """Member i's own (serializable) read of key returns want within timeout_s."""
    deadline = time.monotonic() + timeout_s
    for _ in range(1000):
        r = c.etcdctl([i], "get", key, "--print-value-only", "--consistency=s",
                      timeout=2, check=False)
        if r.returncode == 0 and r.stdout.strip() == want:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return False


def run(c: harness.Cluster) -> None:
    t0 = time.monotonic()
    c.start()
    print(f"started in {time.monotonic() - t0:.1f} s: {c.endpoints()}", flush=True)
    c.etcdctl([0], "put", "smoke", "one")
    leader = c.leader_index()
    check(0 <= leader < c.size, f"leader is m{leader}")

    t1 = time.monotonic()
    c.kill(leader)  # SIGKILL
    check(not c.member_alive(leader), f"m{leader} is dead after SIGKILL")
    new_leader = c.leader_index(timeout=15)
    check(new_leader != leader, f"new leader m{new_leader} after "
          f"{time.monotonic() - t1:.1f} s")
    others = c.live_members()
    c.etcdctl(others, "put", "smoke", "two")
    check(c.etcdctl([others[0]], "get", "smoke", "--print-value-only").stdout.strip() == "two",
          "write with one member down")

    c.restart(leader)
    c.wait_ready(members=[leader])
    check(eventually_serializable(c, leader, "smoke", "two"),
          f"restarted m{leader} caught up (serializable read)")

    follower = next(i for i in c.live_members() if i != c.leader_index())
    status = c.kill(follower, signal.SIGTERM)
    check(status is not None, f"m{follower} exited on SIGTERM (status {status})")
    c.etcdctl([i for i in c.live_members()], "put", "smoke", "three")
    c.restart(follower)
    c.wait_ready()
    check(eventually_serializable(c, follower, "smoke", "three"),
          f"restarted m{follower} caught up")
    check(c.live_members() == list(range(c.size)), "all members up")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=("cairn", "etcd"), default="etcd")
    ap.add_argument("--binary", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default=harness.DEFAULT_ETCDCTL)
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    return harness.run_on_cluster(a.kind, 3, a.binary, run, a.workdir, prefix=f"{a.kind}-smoke-",
                                  etcdctl=a.etcdctl)


if __name__ == "__main__":
    sys.exit(main())
