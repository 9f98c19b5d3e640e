#!/usr/bin/env python3
"""Integration-test harness: start, kill and restart local clusters of etcd or Cairn members.

Cairn takes etcd's command-line flags with etcd's meaning, so one launcher serves both; only the
binary path (and `kind`, which picks a few kind-specific extras) changes. Every member listens on
127.0.0.1 only, on ports chosen by `free_port()` (or fixed ones, see `Cluster(ports=...)`).

    with Cluster("etcd", 3, "/usr/bin/etcd", workdir) as c:
        c.start()                       # start every member, wait until each answers a read
        out = etcdctl(c.endpoints([0]), "put", "k", "v").stdout
        leader = c.leader_index()
        c.kill(leader)                  # SIGKILL
        c.restart(leader)               # same data dir, --initial-cluster-state existing
        c.wait_ready()

Leaving the `with` block always stops every member (SIGTERM, then SIGKILL after 10 s); when the
block is left by an exception, the tail of each member's log is printed to stderr first.

Run as a program to start a cluster by hand and stop it with Ctrl-C:

    python3 tests/integration/harness.py --kind etcd --size 3 --binary /usr/bin/etcd

Standard library only. Every wait in here is bounded in time and in count.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Iterable, Optional, Sequence

DEFAULT_ETCDCTL = "/usr/bin/etcdctl"
HOST = "127.0.0.1"

# Ports handed out by free_port() in this process, so that two calls never return the same port
# even though each probe socket is closed before the port is used.
_handed_out_ports: set[int] = set()

# Every live Cluster, so that an interpreter exit without stop() still reaps the members.
_live_clusters: "set[Cluster]" = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port
    raise RuntimeError("free_port: no fresh port after 200 tries")


def _child_env(extra: Optional[dict] = None) -> dict:
    """The environment for etcd/etcdctl children: ETCD_* and ETCDCTL_* variables from the caller's
    environment removed (etcd refuses flags shadowed by its environment variables), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ETCD_") and not k.startswith("ETCDCTL_")}
    if extra:
        env.update(extra)
    return env


def etcdctl(endpoints: str, *args: str, input: Optional[str] = None, timeout: float = 10,
            check: bool = True, etcdctl_bin: str = DEFAULT_ETCDCTL,
            dial_timeout: float = 2) -> subprocess.CompletedProcess:
    """Run `etcdctl --endpoints=<endpoints> <args>` with the v3 API and return the CompletedProcess
    (text mode, stdout and stderr captured). `timeout` is etcdctl's --command-timeout in seconds;
    the process itself is killed a few seconds after that. With check=True a non-zero exit raises
    subprocess.CalledProcessError (its output and stderr hold etcdctl's)."""
    cmd = [etcdctl_bin, f"--endpoints={endpoints}", f"--dial-timeout={_secs(dial_timeout)}",
           f"--command-timeout={_secs(timeout)}", *args]
    proc = subprocess.run(cmd, input=input if input is not None else "", capture_output=True,
                          text=True, timeout=timeout + dial_timeout + 5,
                          env=_child_env({"ETCDCTL_API": "3"}))
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


def _secs(seconds: float) -> str:
    """A Go duration string for a number of seconds."""
    ms = int(round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class Member:
    """One member's fixed facts (name, ports, paths) and its current process, if any."""

    def __init__(self, index: int, client_port: int, peer_port: int, metrics_port: int,
                 workdir: str):
        self.index = index
        self.name = f"m{index}"
        self.client_port = client_port
        self.peer_port = peer_port
        self.metrics_port = metrics_port
        self.data_dir = os.path.join(workdir, f"{self.name}.data")
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}"


class Cluster:
    """A local cluster of `size` members m0..m{size-1} of `kind` "cairn" or "etcd".

    Each member has its own client, peer and metrics port, data dir workdir/m{i}.data and log
    file workdir/m{i}.log (stdout and stderr, appended across restarts). Optional keyword-only
    arguments: `etcdctl` (path of etcdctl), `ports` (a list of (client, peer, metrics) port
    tuples, one per member, instead of free ports), `token` (--initial-cluster-token).
    """

    def __init__(self, kind: str, size: int, binary: str, workdir: str, heartbeat_ms: int = 100,
                 election_ms: int = 1000, snapshot_count: Optional[int] = None,
                 extra_flags: Sequence[str] = (), *, etcdctl: str = DEFAULT_ETCDCTL,
                 ports: Optional[Sequence[tuple[int, int, int]]] = None,
                 token: Optional[str] = None):
        if kind not in ("cairn", "etcd"):
            raise ValueError(f"kind must be 'cairn' or 'etcd', not {kind!r}")
        if size < 1:
            raise ValueError("size must be at least 1")
        if ports is not None and len(ports) != size:
            raise ValueError("ports needs one (client, peer, metrics) tuple per member")
        self.kind = kind
        self.size = size
        self.binary = binary
        self.workdir = os.path.abspath(workdir)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.snapshot_count = snapshot_count
        self.extra_flags = tuple(extra_flags)
        self.etcdctl_bin = etcdctl
        self.token = token or f"{kind}-harness-{os.getpid()}-{free_port()}"
        os.makedirs(self.workdir, exist_ok=True)
        self._fixed_ports = ports is not None
        self.members = []
        for i in range(size):
            cp, pp, mp = ports[i] if ports is not None else (free_port(), free_port(), free_port())
            self.members.append(Member(i, cp, pp, mp, self.workdir))

    # ----- lifecycle -------------------------------------------------------------------------

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def command(self, i: int, state: str = "new") -> list[str]:
        """The command line that starts member i."""
        m = self.members[i]
        cmd = [
            self.binary,
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--listen-client-urls={m.client_url}",
            f"--advertise-client-urls={m.client_url}",
            f"--listen-peer-urls={m.peer_url}",
            f"--initial-advertise-peer-urls={m.peer_url}",
            f"--initial-cluster={self.initial_cluster()}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
            f"--listen-metrics-urls={m.metrics_url}",
        ]
        if self.snapshot_count is not None:
            cmd.append(f"--snapshot-count={self.snapshot_count}")
        if self.kind == "etcd":
            # zap logging: one JSON object a line, without the capnslog deprecation warning.
            cmd += ["--logger=zap", "--log-outputs=stderr"]
        cmd += list(self.extra_flags)
        return cmd

    def start(self, timeout_s: float = 30, attempts: int = 3) -> None:
        """Start every member as a new cluster and wait until each answers a read.

        With ports from free_port() (no `ports=` given), a member that dies at start because
        one of its ports was taken meanwhile ("address already in use" in its log) makes the
        whole start be retried on fresh ports and empty data dirs, at most `attempts` times."""
        _live_clusters.add(self)
        for attempt in range(1, attempts + 1):
            for i in range(self.size):
                self.start_member(i, "new")
            try:
                self.wait_ready(timeout_s, members=range(self.size))
                return
            except RuntimeError:
                if (self._fixed_ports or attempt == attempts
                        or not any("address already in use" in self.log_tail(i, 200).lower()
                                   for i in range(self.size))):
                    raise
            print(f"harness: a port was taken while {self.kind} started; retrying on new ports",
                  file=sys.stderr)
            self.stop()
            _live_clusters.add(self)
            for m in self.members:
                shutil.rmtree(m.data_dir, ignore_errors=True)
                m.client_port, m.peer_port, m.metrics_port = free_port(), free_port(), free_port()

    def start_member(self, i: int, state: str = "new") -> None:
        """Start member i's process (it must not be running) without waiting for it."""
        if state not in ("new", "existing"):
            raise ValueError("state must be 'new' or 'existing'")
        m = self.members[i]
        if self.member_alive(i):
            raise RuntimeError(f"{m.name} is already running")
        _live_clusters.add(self)
        cmd = self.command(i, state)
        with open(m.log_path, "ab") as log:
            log.write(f"=== harness {time.strftime('%H:%M:%S')}: starting {m.name}: "
                      f"{' '.join(cmd)}\n".encode())
            log.flush()
            # A session of its own: a Ctrl-C at the terminal reaches the harness, not the members.
            m.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=_child_env(),
                                      start_new_session=True)

    def kill(self, i: int, signal: int = signal.SIGKILL, wait_s: float = 10) -> Optional[int]:
        """Send `signal` to member i and wait (up to wait_s) for it to exit; returns its exit
        status (None if it was not running or did not exit in time)."""
        m = self.members[i]
        if m.proc is None:
            return None
        if m.proc.poll() is None:
            try:
                m.proc.send_signal(signal)
            except ProcessLookupError:
                pass
        try:
            return m.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            return None

    def restart(self, i: int) -> None:
        """Start member i again on its data dir with --initial-cluster-state existing (it must
        have been stopped or killed first). Does not wait; call wait_ready()."""
        if self.member_alive(i):
            raise RuntimeError(f"{self.members[i].name} is still running; kill it first")
        self.start_member(i, "existing")

    def stop(self, wait_s: float = 10) -> None:
        """SIGTERM every running member and SIGKILL whatever is left after wait_s seconds.

        The SIGTERMs go out one member at a time, each member waited for up to wait_s/size before
        the next is signalled: etcd's leader, on SIGTERM, hands leadership to a follower and waits
        for it to take over (up to 7 s with the default timings), which never happens when the
        followers are terminating at the same moment. One at a time, a 3-member etcd cluster
        stops in well under a second."""
        running = [m for m in self.members if m.proc is not None and m.proc.poll() is None]
        deadline = time.monotonic() + wait_s
        slot = wait_s / max(1, len(running))
        for m in running:
            try:
                m.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                m.proc.wait(timeout=max(0.0, min(slot, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
        for m in running:
            try:
                m.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for m in running:
            if m.proc.poll() is None:
                print(f"harness: {m.name} (pid {m.proc.pid}) still running {wait_s:g} s after "
                      f"SIGTERM; sending SIGKILL", file=sys.stderr)
                try:
                    m.proc.kill()
                except ProcessLookupError:
                    pass
                try:
                    m.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    print(f"harness: {m.name} (pid {m.proc.pid}) survived SIGKILL",
                          file=sys.stderr)
        _live_clusters.discard(self)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and exc_type is not KeyboardInterrupt:
                self.print_log_tails()
        finally:
            self.stop()

    # ----- queries ---------------------------------------------------------------------------

    def member_alive(self, i: int) -> bool:
        p = self.members[i].proc
        return p is not None and p.poll() is None

    def live_members(self) -> list[int]:
        return [i for i in range(self.size) if self.member_alive(i)]

    def endpoints(self, members: Optional[Iterable[int]] = None) -> str:
        """"http://127.0.0.1:p,..." for the given member indexes (default: all members)."""
        idx = range(self.size) if members is None else members
        return ",".join(self.members[i].client_url for i in idx)

    def etcdctl(self, members: Optional[Iterable[int]], *args: str, **kw) -> subprocess.CompletedProcess:
        """etcdctl() against the given members (default: all), with this cluster's etcdctl."""
        kw.setdefault("etcdctl_bin", self.etcdctl_bin)
        return etcdctl(self.endpoints(members), *args, **kw)

    def wait_ready(self, timeout_s: float = 30, members: Optional[Iterable[int]] = None) -> None:
        """Wait until every live member (or each of `members`, which must all be running) answers
        a linearizable read, so a leader exists and the member can serve through it. Raises
        TimeoutError, or RuntimeError if a member it waits for is not running or exits."""
        deadline = time.monotonic() + timeout_s
        pending = self.live_members() if members is None else list(members)
        if not pending:
            raise RuntimeError("wait_ready: no member is running")
        last_err = ""
        for _ in range(10_000):
            for i in list(pending):
                if not self.member_alive(i):
                    m = self.members[i]
                    how = ("was never started" if m.proc is None
                           else f"exited with status {m.proc.returncode}")
                    raise RuntimeError(f"wait_ready: {m.name} {how}; see {m.log_path}")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    r = etcdctl(self.members[i].client_url, "get", "cairn-harness-ready-probe",
                                timeout=min(2.0, max(0.5, left)), check=False,
                                etcdctl_bin=self.etcdctl_bin, dial_timeout=1)
                except subprocess.TimeoutExpired:
                    last_err = f"{self.members[i].name}: etcdctl timed out"
                    continue
                if r.returncode == 0:
                    pending.remove(i)
                else:
                    last_err = f"{self.members[i].name}: {r.stderr.strip()[-300:]}"
            if not pending:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise TimeoutError(f"wait_ready: {[self.members[i].name for i in pending]} not ready "
                           f"after {timeout_s} s; last error: {last_err}")

    def status(self, i: int, timeout_s: float = 2) -> Optional[dict]:
        """Member i's `etcdctl endpoint status -w json` entry's "Status" object, or None."""
        try:
            r = etcdctl(self.members[i].client_url, "endpoint", "status", "-w", "json",
                        timeout=timeout_s, check=False, etcdctl_bin=self.etcdctl_bin,
                        dial_timeout=1)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        try:
            entries = json.loads(r.stdout)
        except ValueError:
            return None
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            return entries[0].get("Status")
        return None

    def leader_index(self, timeout: float = 10) -> int:
        """Index of the member that reports itself leader (its Status.header.member_id equals its
        Status.leader), asking every live member; polls until `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            for i in self.live_members():
                st = self.status(i)
                if not st:
                    continue
                member_id = st.get("header", {}).get("member_id")
                leader = st.get("leader")
                if member_id is not None and leader and member_id == leader:
                    return i
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise TimeoutError(f"leader_index: no live member reported itself leader within {timeout} s")

    # ----- diagnostics -----------------------------------------------------------------------

    def log_tail(self, i: int, lines: int = 40) -> str:
        try:
            with open(self.members[i].log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(data.splitlines()[-lines:])

    def print_log_tails(self, lines: int = 40, file=sys.stderr) -> None:
        for m in self.members:
            print(f"----- {self.kind} {m.name} log tail ({m.log_path}) -----", file=file)
            print(self.log_tail(m.index, lines), file=file)
        file.flush()


def run_on_cluster(kind: str, size: int, binary: str, body, workdir: Optional[str] = None,
                   prefix: str = "cairn-test-", **cluster_args) -> int:
    """A test's main: runs body(cluster) on a fresh Cluster, prints PASS with the time or FAIL with
    the error (the workdir is then kept for its logs), and returns the exit status (0 or 1).
    A `workdir` given by the caller is always kept."""
    directory = workdir or tempfile.mkdtemp(prefix=prefix)
    started = time.monotonic()
    try:
        with Cluster(kind, size, binary, directory, **cluster_args) as cluster:
            body(cluster)
    except (AssertionError, RuntimeError, TimeoutError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or ""
        print(f"FAIL: {type(error).__name__}: {error}\n{detail}workdir kept: {directory}",
              file=sys.stderr)
        return 1
    print(f"PASS ({time.monotonic() - started:.1f} s)")
    if workdir is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


@atexit.register
def _reap_at_exit() -> None:
    for c in list(_live_clusters):
        try:
            c.stop(wait_s=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Start a local etcd or Cairn cluster; Ctrl-C stops it.")
    ap.add_argument("--kind", choices=("cairn", "etcd"), default="cairn")
    ap.add_argument("--size", type=int, default=3)
    ap.add_argument("--binary", help="server binary (default: /usr/bin/etcd or build/bin/cairn)")
    ap.add_argument("--etcdctl", default=DEFAULT_ETCDCTL)
    ap.add_argument("--workdir", help="data dirs and logs (default: a fresh temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir after stopping")
    ap.add_argument("--base-port", type=int,
                    help="fixed ports: member i gets client B+10i, peer B+10i+1, metrics B+10i+2")
    ap.add_argument("--heartbeat-ms", type=int, default=100)
    ap.add_argument("--election-ms", type=int, default=1000)
    ap.add_argument("--snapshot-count", type=int)
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for readiness")
    ap.add_argument("extra", nargs="*", help="extra server flags (after --)")
    a = ap.parse_args(argv)

    binary = a.binary
    if binary is None:
        here = os.path.dirname(os.path.abspath(__file__))
        binary = ("/usr/bin/etcd" if a.kind == "etcd"
                  else os.path.normpath(os.path.join(here, "..", "..", "build", "bin", "cairn")))
    made_tmp = a.workdir is None
    workdir = a.workdir or tempfile.mkdtemp(prefix=f"{a.kind}-cluster-")
    ports = None
    if a.base_port is not None:
        ports = [(a.base_port + 10 * i, a.base_port + 10 * i + 1, a.base_port + 10 * i + 2)
                 for i in range(a.size)]

    stop_requested = []

    def on_signal(signum, _frame):
        stop_requested.append(signum)
        raise KeyboardInterrupt

    # Also SIGINT explicitly: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = Cluster(a.kind, a.size, binary, workdir, heartbeat_ms=a.heartbeat_ms,
                      election_ms=a.election_ms, snapshot_count=a.snapshot_count,
                      extra_flags=a.extra, etcdctl=a.etcdctl, ports=ports)
    rc = 0
    try:
        with cluster:
            cluster.start(timeout_s=a.timeout)
            leader = cluster.leader_index(timeout=a.timeout)
            print(f"{a.kind} cluster of {a.size} ready; leader m{leader}; workdir {workdir}")
            for m in cluster.members:
                print(f"  {m.name}: client {m.client_url}  peer {m.peer_url}  "
                      f"metrics {m.metrics_url}  log {m.log_path}")
            print(f"ETCDCTL_API=3 {a.etcdctl} --endpoints={cluster.endpoints()} endpoint status -w table")
            print("Ctrl-C stops the cluster.", flush=True)
            # Watch the members until Ctrl-C; report (once) a member that exits on its own.
            reported: set[int] = set()
            while True:
                time.sleep(0.5)
                for m in cluster.members:
                    if m.index not in reported and not cluster.member_alive(m.index):
                        reported.add(m.index)
                        print(f"{m.name} exited (status {m.proc.returncode}); log {m.log_path}",
                              flush=True)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    except Exception as e:  # noqa: BLE001 - report and exit non-zero
        print(f"harness: {e}", file=sys.stderr)
        rc = 1
    finally:
        if made_tmp and not a.keep and rc == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif made_tmp:
            print(f"workdir kept: {workdir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
