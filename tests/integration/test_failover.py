#!/usr/bin/env python3
"""Leader failover under write load: no acknowledged write is ever lost.

    python3 tests/integration/test_failover.py --cairn build/bin/cairn [--rounds 2]

A 3-member Cairn cluster (heartbeat 100 ms, election timeout 1000 ms). Each round:
  1. start WRITERS writer threads; each runs one `etcdctl put` at a time (a process per put,
     --command-timeout=3s) with a key and value unique to that put, round-robin over the three
     client endpoints, and records whether the put was acknowledged (exit 0), failed (non-zero
     exit) or timed out (outcome unknown either way);
  2. find the leader (Status) and SIGKILL it; probe puts then start every 100 ms (a few in
     flight at once), alternating between the two survivors, until one is acknowledged: the
     failover time (kill to first acknowledged write) must stay under 2 election timeouts +
     FAILOVER_SLACK_S;
  3. keep the load running WRITE_AFTER_FAILOVER_S seconds, restart the killed member on its data
     dir and wait until a serializable read on it returns the last write acknowledged so far;
  4. stop the load and check, on every member, with linearizable reads and then (after a
     bounded catch-up wait) serializable reads, that every write acknowledged in any round so
     far is present with its value, and that every key under the test prefix holds the value of
     a put that was actually attempted (an unacknowledged put may or may not have happened).
Later rounds kill whichever member leads then. A summary is printed at the end.

--cairn /usr/bin/etcd runs the same test against etcd (a check of the test itself).
Options: --etcdctl PATH, --workdir DIR (default: a temporary directory, removed after a pass),
--keep, --writers N (default 4), --rounds N (default 2).
Exit status: 0 pass, 1 a check failed, 2 harness failure (the cluster never came up, etc.).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HEARTBEAT_MS = 100
ELECTION_MS = 1000
FAILOVER_SLACK_S = 3.0            # 2-core CI machines, sanitizer builds
FAILOVER_LIMIT_S = 2 * ELECTION_MS / 1000 + FAILOVER_SLACK_S
LOAD_BEFORE_KILL_S = 1.5          # acknowledged writes exist before the leader dies
WRITE_AFTER_FAILOVER_S = 2.0
PUT_TIMEOUT_S = 3.0               # etcdctl --command-timeout for the load
PROBE_TIMEOUT_S = 1.5             # etcdctl --command-timeout for a failover probe
PROBE_INTERVAL_S = 0.1            # a new failover probe this often ...
PROBE_CONCURRENCY = 20            # ... with at most this many in flight
CATCH_UP_LIMIT_S = 20.0
SERIALIZABLE_WAIT_S = 10.0
PREFIX = "fo/"


class TestFailure(Exception):
    pass


class Ledger:
    """Every put the test attempted and every put acknowledged, shared by the writer threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempted: dict[str, str] = {}
        self.acked: dict[str, str] = {}
        self.last_acked: Optional[tuple[str, str]] = None
        self.failed = 0
        self.timeouts = 0
        self.failure_samples: list[str] = []

    def attempt(self, key: str, value: str) -> None:
        with self.lock:
            self.attempted[key] = value

    def ack(self, key: str, value: str) -> None:
        with self.lock:
            self.acked[key] = value
            self.last_acked = (key, value)

    def fail(self, why: str, timed_out: bool = False) -> None:
        with self.lock:
            if timed_out:
                self.timeouts += 1
            else:
                self.failed += 1
            if len(self.failure_samples) < 5 and why not in self.failure_samples:
                self.failure_samples.append(why)


def put(ledger: Ledger, cluster: harness.Cluster, member: int, key: str, value: str,
        timeout_s: float) -> bool:
    """One etcdctl put to one member, recorded in the ledger; True when acknowledged."""
    ledger.attempt(key, value)
    try:
        r = harness.etcdctl(cluster.members[member].client_url, "put", key, value,
                            timeout=timeout_s, dial_timeout=1, check=False,
                            etcdctl_bin=cluster.etcdctl_bin)
    except subprocess.TimeoutExpired:
        ledger.fail("etcdctl process timed out", timed_out=True)
        return False
    if r.returncode == 0 and r.stdout.strip() == "OK":
        ledger.ack(key, value)
        return True
    err = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    ledger.fail(f"m{member}: {err[:200]}", timed_out="deadline exceeded" in err.lower())
    return False


class Writer(threading.Thread):
    """Sequential puts with unique keys, round-robin over the members, until stopped."""

    MAX_PUTS = 100_000

    def __init__(self, wid: int, round_no: int, cluster: harness.Cluster, ledger: Ledger,
                 stop: threading.Event, deadline: float) -> None:
        super().__init__(name=f"writer-{wid}", daemon=True)
        self.wid, self.round_no, self.cluster, self.ledger = wid, round_no, cluster, ledger
        self.stop_event, self.deadline = stop, deadline
        self.acked = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            for seq in range(self.MAX_PUTS):
                if self.stop_event.is_set() or time.monotonic() > self.deadline:
                    return
                key = f"{PREFIX}r{self.round_no}/w{self.wid}/{seq:06d}"
                value = f"v{self.round_no}.{self.wid}.{seq}.{secrets.token_hex(4)}"
                member = (self.wid + seq) % self.cluster.size
                if put(self.ledger, self.cluster, member, key, value, PUT_TIMEOUT_S):
                    self.acked += 1
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.error = e


def read_prefix(cluster: harness.Cluster, member: int, serializable: bool) -> dict[str, str]:
    """Every key under PREFIX and its value, read from one member."""
    args = ["get", "--prefix", PREFIX]
    if serializable:
        args.append("--consistency=s")
    try:
        r = cluster.etcdctl([member], *args, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"m{member}: etcdctl get --prefix timed out")
    if r.returncode != 0:
        raise TestFailure(f"m{member}: etcdctl {' '.join(args)} failed: {r.stderr.strip()[-300:]}")
    lines = r.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 2:
        raise TestFailure(f"m{member}: odd number of output lines from get --prefix")
    return {lines[i]: lines[i + 1] for i in range(0, len(lines), 2)}


def check_contents(got: dict[str, str], ledger: Ledger, where: str) -> list[str]:
    """Problems with what a member returned: acked writes missing or wrong, foreign values."""
    problems = []
    with ledger.lock:
        acked = dict(ledger.acked)
        attempted = dict(ledger.attempted)
    for k, v in acked.items():
        if k not in got:
            problems.append(f"{where}: acknowledged key {k} missing")
        elif got[k] != v:
            problems.append(f"{where}: acknowledged key {k} = {got[k]!r}, expected {v!r}")
    for k, v in got.items():
        if k not in attempted:
            problems.append(f"{where}: key {k} was never written")
        elif attempted[k] != v:
            problems.append(f"{where}: key {k} = {v!r}, but the put attempted {attempted[k]!r}")
    return problems


def verify(cluster: harness.Cluster, ledger: Ledger) -> None:
    with ledger.lock:
        n_acked = len(ledger.acked)
    # Linearizable reads from every member; all members must agree (retry once for a write
    # whose outcome was unknown and that commits late).
    views = {}
    for i in range(cluster.size):
        got = read_prefix(cluster, i, serializable=False)
        problems = check_contents(got, ledger, f"m{i} linearizable")
        if problems:
            raise TestFailure(f"{len(problems)} problem(s), first ones:\n  "
                              + "\n  ".join(problems[:10]))
        views[i] = got
    if any(views[i] != views[0] for i in views):
        time.sleep(1)
        views = {i: read_prefix(cluster, i, serializable=False) for i in range(cluster.size)}
        for i in views:
            if views[i] != views[0]:
                only0 = sorted(set(views[0].items()) - set(views[i].items()))[:5]
                onlyi = sorted(set(views[i].items()) - set(views[0].items()))[:5]
                raise TestFailure(f"linearizable reads differ between m0 and m{i}: "
                                  f"only on m0 {only0}, only on m{i} {onlyi}")
    print(f"  linearizable reads on every member: all {n_acked} acknowledged writes present, "
          f"{len(views[0])} keys under {PREFIX}", flush=True)
    # Serializable reads: each member's own state, after a bounded catch-up wait.
    for i in range(cluster.size):
        deadline = time.monotonic() + SERIALIZABLE_WAIT_S
        problems: list[str] = []
        for _ in range(100):
            got = read_prefix(cluster, i, serializable=True)
            problems = check_contents(got, ledger, f"m{i} serializable")
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if problems:
            raise TestFailure(f"after {SERIALIZABLE_WAIT_S:g} s, {len(problems)} problem(s), "
                              f"first ones:\n  " + "\n  ".join(problems[:10]))
    print(f"  serializable reads on every member: all {n_acked} acknowledged writes present",
          flush=True)


def measure_failover(cluster: harness.Cluster, ledger: Ledger, killed: int, round_no: int,
                     t_kill: float) -> float:
    """Seconds from the kill to the first acknowledged probe write on a survivor.

    A probe put starts every PROBE_INTERVAL_S, alternating between the survivors, with at most
    PROBE_CONCURRENCY in flight: a put that went to a member still following the dead leader
    waits out its timeout without delaying the next probe, so the figure is not rounded up to
    whole probe timeouts."""
    survivors = [i for i in range(cluster.size) if i != killed]
    acks: list[float] = []
    lock = threading.Lock()

    def probe(attempt: int) -> None:
        member = survivors[attempt % len(survivors)]
        if put(ledger, cluster, member, f"{PREFIX}r{round_no}/probe/{attempt:04d}",
               f"p{round_no}.{attempt}", PROBE_TIMEOUT_S):
            with lock:
                acks.append(time.monotonic())

    limit = t_kill + FAILOVER_LIMIT_S + 10  # keep probing past the limit to report the figure
    threads: list[threading.Thread] = []
    for attempt in range(1000):
        with lock:
            if acks:
                break
        if time.monotonic() > limit:
            break
        if sum(t.is_alive() for t in threads) < PROBE_CONCURRENCY:
            t = threading.Thread(target=probe, args=(attempt,), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(PROBE_INTERVAL_S)
    for t in threads:
        t.join(timeout=PROBE_TIMEOUT_S + 10)
    with lock:
        if acks:
            return min(acks) - t_kill
    raise TestFailure(f"no write acknowledged within {time.monotonic() - t_kill:.1f} s of "
                      f"killing the leader m{killed}")


def wait_caught_up(cluster: harness.Cluster, member: int, key: str, value: str) -> float:
    """Seconds until a serializable read of `key` on `member` returns `value`."""
    start = time.monotonic()
    deadline = start + CATCH_UP_LIMIT_S
    last = ""
    for _ in range(1000):
        try:
            r = cluster.etcdctl([member], "get", key, "--consistency=s", "--print-value-only",
                                timeout=2, check=False)
            if r.returncode == 0 and r.stdout.strip() == value:
                return time.monotonic() - start
            last = (r.stdout.strip() or r.stderr.strip())[-200:]
        except subprocess.TimeoutExpired:
            last = "etcdctl timed out"
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise TestFailure(f"m{member} did not catch up to {key} within {CATCH_UP_LIMIT_S:g} s "
                      f"(last answer: {last!r})")


def run_round(cluster: harness.Cluster, ledger: Ledger, round_no: int, writers_n: int) -> dict:
    leader = cluster.leader_index(timeout=15)
    print(f"round {round_no}: leader is m{leader}; starting {writers_n} writers", flush=True)
    with ledger.lock:
        acked_before = len(ledger.acked)
        failed_before = ledger.failed + ledger.timeouts
    stop = threading.Event()
    writers = [Writer(w, round_no, cluster, ledger, stop, time.monotonic() + 45)
               for w in range(writers_n)]
    for w in writers:
        w.start()
    try:
        time.sleep(LOAD_BEFORE_KILL_S)
        with ledger.lock:
            if len(ledger.acked) == acked_before:
                raise TestFailure(f"no write acknowledged in {LOAD_BEFORE_KILL_S:g} s of load "
                                  f"before the kill; failures: {ledger.failure_samples}")
        t_kill = time.monotonic()
        status = cluster.kill(leader)
        if status is None:
            raise TestFailure(f"m{leader} did not exit after SIGKILL")
        failover = measure_failover(cluster, ledger, leader, round_no, t_kill)
        new_leader = cluster.leader_index(timeout=10)
        print(f"round {round_no}: killed m{leader}; a write was acknowledged {failover:.2f} s "
              f"later; new leader m{new_leader}", flush=True)
        if failover >= FAILOVER_LIMIT_S:
            raise TestFailure(f"failover took {failover:.2f} s, limit {FAILOVER_LIMIT_S:g} s "
                              f"(2 election timeouts + {FAILOVER_SLACK_S:g} s)")
        time.sleep(WRITE_AFTER_FAILOVER_S)
        cluster.restart(leader)
        t_restart = time.monotonic()
        try:
            cluster.wait_ready(timeout_s=CATCH_UP_LIMIT_S, members=[leader])
        except (TimeoutError, RuntimeError) as e:
            raise TestFailure(f"restarted m{leader} never served a linearizable read: {e}")
        with ledger.lock:
            last = ledger.last_acked
        assert last is not None
        wait_caught_up(cluster, leader, *last)
        caught_up = time.monotonic() - t_restart
        print(f"round {round_no}: restarted m{leader}; it served {last[0]} serializably "
              f"{caught_up:.2f} s after the restart", flush=True)
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=PUT_TIMEOUT_S + 10)
    for w in writers:
        if w.is_alive():
            raise TestFailure(f"{w.name} did not stop")
        if w.error is not None:
            raise TestFailure(f"{w.name} crashed: {type(w.error).__name__}: {w.error}")
    with ledger.lock:
        acked = len(ledger.acked) - acked_before
        unknown = ledger.failed + ledger.timeouts - failed_before
    print(f"round {round_no}: load stopped: {acked} writes acknowledged, {unknown} failed or "
          f"timed out; verifying", flush=True)
    verify(cluster, ledger)
    return {"round": round_no, "killed": leader, "new_leader": new_leader,
            "failover_s": failover, "catch_up_s": caught_up, "acked": acked,
            "unknown": unknown}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True, help="Cairn binary")
    ap.add_argument("--etcdctl", default=harness.DEFAULT_ETCDCTL)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    for path in (a.cairn, a.etcdctl):
        if not os.access(path, os.X_OK):
            print(f"not an executable: {path}", file=sys.stderr)
            return 2
    if a.rounds < 1 or a.writers < 1:
        ap.error("--rounds and --writers must be at least 1")

    made_tmp = a.workdir is None
    workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="cairn-failover-"))
    started = time.monotonic()
    ledger = Ledger()
    results = []
    rc = 0
    try:
        kind = "etcd" if os.path.basename(a.cairn).startswith("etcd") else "cairn"
        with harness.Cluster(kind, 3, a.cairn, workdir, heartbeat_ms=HEARTBEAT_MS,
                             election_ms=ELECTION_MS, etcdctl=a.etcdctl) as cluster:
            try:
                cluster.start(timeout_s=30)
            except (TimeoutError, RuntimeError) as e:
                print(f"harness failure: cluster did not start: {e}", file=sys.stderr)
                cluster.print_log_tails()
                return 2
            print(f"cluster ready in {time.monotonic() - started:.1f} s", flush=True)
            for r in range(1, a.rounds + 1):
                results.append(run_round(cluster, ledger, r, a.writers))
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        rc = 1
    except Exception as e:  # noqa: BLE001 - harness failure
        print(f"harness failure: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 2

    print("summary:")
    for res in results:
        print(f"  round {res['round']}: killed leader m{res['killed']}, new leader "
              f"m{res['new_leader']}, failover {res['failover_s']:.2f} s "
              f"(limit {FAILOVER_LIMIT_S:g} s), restarted member caught up in "
              f"{res['catch_up_s']:.2f} s, {res['acked']} acked, {res['unknown']} failed/timed out")
    with ledger.lock:
        print(f"  total: {len(ledger.acked)} writes acknowledged and verified, {ledger.failed} "
              f"failed, {ledger.timeouts} timed out (outcome unknown, allowed)")
        for s in ledger.failure_samples:
            print(f"    sample failure: {s}")
    print(f"  {time.monotonic() - started:.1f} s in all")
    if rc == 0:
        print(f"PASS: {len(results)} failover round(s)")
        if made_tmp and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"workdir kept: {workdir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
