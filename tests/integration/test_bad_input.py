#!/usr/bin/env python3
"""Bad input never takes a Cairn member down, and is refused the way etcd refuses it.

    python3 tests/integration/test_bad_input.py --cairn build/bin/cairn

A 3-member Cairn cluster and, for reference, a 1-member etcd. Sentinel keys are written to Cairn
first. Then, each case printed as "ok <case>" (or "not ok <case>: <why>"; every case runs, the
exit status reports whether any failed):

  etcdctl cases, run against etcd and against every Cairn member; exit code, stdout and stderr
  (normalized as in test_etcdctl_transcript.py) must be identical to etcd's, and etcd's must
  show the expected outcome:
    empty key; range end before key; negative revision; a 1.6 MiB value (over
    --max-request-bytes, under gRPC's receive limit); a 2 MiB value (etcdctl refuses to send
    it); a txn of 128 ops (the limit) and of 129 and 200 ops.
  gRPC client cases (the Node.js etcd3 client, which sends what etcdctl refuses to): values of
    1.6, 2 and 5 MiB; error class, gRPC code and message compared with etcd's (gRPC's own
    "message larger than max" text differs between grpc-go and gRPC C++ in its prefix only:
    that prefix is normalized away and the difference printed as a note).
  peer port (raw TCP to one member's --listen-peer-urls): garbage, a huge and a zero length, a
    body with codec version 9, a hello naming another cluster, a hello from a member id that is
    not in the cluster, a valid hello followed by junk or by a second hello: each connection
    must be closed by the member within a few seconds; then 70 connections that send nothing:
    the cluster must keep serving while they are held, and every one of them must be closed
    within HELLO_DEADLINE_S (10 s; those beyond the member's inbound limit at once): a peer that
    never says hello must not hold an inbound slot forever; the member's
    cairn_peer_connections_refused_total must grow.
  client port (raw TCP to the gRPC port): random bytes, an HTTP/1.1 GET, an HTTP/2 preface
    followed by garbage: each connection closed (HTTP/2 frames such as SETTINGS or GOAWAY before
    the close are fine).
  metrics port: /metrics has etcd_server_has_leader 1 on every member, /health answers
    {"health":"true"} (as etcd's does), a request head over 8 KiB is closed without an answer.
Finally every member is still running, a put + get round trip works on every member, and the
sentinels are intact (linearizable and serializable reads on every member).

Random bytes come from a seed printed at the start; BAD_INPUT_SEED=N repeats a run's bytes.
Options: --etcd PATH, --etcdctl PATH, --node PATH, --workdir DIR (default: temporary, removed
after a pass), --keep.
Exit status: 0 pass, 1 a case failed, 2 harness failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from test_etcdctl_transcript import (  # noqa: E402
    address_rewriter, normalize_stderr, normalize_stdout)

NODE_MODULES = os.path.join(HERE, "npm", "node_modules")
CLOSE_WAIT_S = 5.0          # a bad connection must be closed within this
HELLO_DEADLINE_S = 10.0     # a peer connection that never sends a hello must be closed by then
IDLE_CONNECTIONS = 70
PEER_INBOUND_MAX = 64       # Cairn's PeerTransportOptions::inbound_connections_max (for messages)
MIB = 1024 * 1024
SENTINELS = {f"sentinel/{i}": f"sentinel-value-{i}-{'x' * i}" for i in range(5)}


class CaseFailure(Exception):
    pass


class HarnessFailure(Exception):
    pass


# ----- CRC32C and peer frames ------------------------------------------------------------------

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4 check value
assert crc32c(bytes(32)) == 0x8A9136AA


def frame(body: bytes) -> bytes:
    """A peer frame: u32 length, u32 CRC32C of the body, body (little-endian)."""
    return struct.pack("<II", len(body), crc32c(body)) + body


def hello(member_id: int, cluster_id: int) -> bytes:
    """A Hello frame: version 1, kind 64, u64 from, u64 cluster id."""
    return frame(bytes([1, 64]) + struct.pack("<QQ", member_id, cluster_id))


# ----- raw sockets -----------------------------------------------------------------------------

def expect_closed(port: int, payload: bytes, what: str, wait_s: float = CLOSE_WAIT_S,
                  read_limit: int = 1 << 20) -> bytes:
    """Connect, send `payload`, and require the server to close the connection (EOF or reset)
    within wait_s; returns whatever the server sent before closing."""
    deadline = time.monotonic() + wait_s
    got = b""
    with socket.create_connection((harness.HOST, port), timeout=wait_s) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return got  # closed while we were still sending
        for _ in range(10_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return got
            except socket.timeout:
                break
            if not chunk:
                return got
            got += chunk
            if len(got) > read_limit:
                raise CaseFailure(f"{what}: server sent over {read_limit} bytes and kept going")
    raise CaseFailure(f"{what}: connection still open {wait_s:g} s after the bad input "
                      f"(received {len(got)} bytes: {got[:60]!r})")


def socket_closed(s: socket.socket) -> bool:
    """True when the peer closed `s` (EOF or reset); False when it is open and silent."""
    s.settimeout(0)
    try:
        data = s.recv(1)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    return data == b""


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{harness.HOST}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def metric(port: int, name: str) -> Optional[float]:
    try:
        status, body = http_get(port, "/metrics")
    except OSError:
        return None
    if status != 200:
        return None
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", body, re.M)
    return float(m.group(1)) if m else None


# ----- the test --------------------------------------------------------------------------------

NODE_SCRIPT = r"""
'use strict';
// Puts values of the given sizes with the etcd3 client; one JSON line per size.
const { Etcd3 } = require('etcd3');
const overall = setTimeout(() => { console.log(JSON.stringify({ fatal: 'timeout' })); process.exit(3); }, 50000);
async function main() {
  const host = process.argv[2];
  const sizes = process.argv.slice(3).map(Number);
  for (const size of sizes) {
    // A client per put: the client's circuit breaker opens after repeated failures.
    const client = new Etcd3({ hosts: [host], defaultCallOptions: () => ({ deadline: Date.now() + 10000 }) });
    try {
      await client.put('bad-input/node-big').value(Buffer.alloc(size, 0x78));
      console.log(JSON.stringify({ size, ok: true }));
    } catch (err) {
      console.log(JSON.stringify({ size, ok: false, name: err.constructor.name, message: String(err.message) }));
    }
    client.close();
  }
  clearTimeout(overall);
}
main().catch((err) => { console.log(JSON.stringify({ fatal: String(err && err.stack || err) })); process.exit(3); });
"""


class BadInputTest:
    def __init__(self, etcd: harness.Cluster, cairn: harness.Cluster, node: str, workdir: str):
        self.etcd = etcd
        self.cairn = cairn
        self.node = node
        self.workdir = workdir
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.rewrite = {id(etcd): address_rewriter(etcd), id(cairn): address_rewriter(cairn)}
        self.seed = int(os.environ.get("BAD_INPUT_SEED") or random.randrange(1, 1 << 31))
        self.rng = random.Random(self.seed)
        print(f"random bytes from seed {self.seed} (BAD_INPUT_SEED={self.seed} repeats them)",
              flush=True)

    # ----- bookkeeping -----

    def case(self, name: str, fn: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            fn()
            dead = [i for i in range(self.cairn.size) if not self.cairn.member_alive(i)]
            if dead:
                raise CaseFailure(f"member(s) {['m%d' % i for i in dead]} exited; "
                                  f"see {[self.cairn.members[i].log_path for i in dead]}")
        except CaseFailure as e:
            self.failures.append(f"{name}: {e}")
            print(f"not ok {name}: {e}", flush=True)
            return
        print(f"ok {name} ({time.monotonic() - started:.1f} s)", flush=True)

    # ----- etcdctl comparison -----

    def run_ctl(self, cluster: harness.Cluster, member: int, args: list[str],
                stdin: Optional[str]) -> tuple:
        try:
            r = cluster.etcdctl([member], *args, input=stdin, timeout=5, check=False)
        except subprocess.TimeoutExpired:
            return ("timeout", "", "")
        rw = self.rewrite[id(cluster)]
        return (r.returncode, rw(normalize_stdout(r.stdout.rstrip("\n"))),
                rw(normalize_stderr(r.stderr.rstrip("\n"))))

    def ctl_case(self, args: list[str], stdin: Optional[str] = None,
                 expect_code: Optional[int] = None, expect_text: Optional[str] = None,
                 expect_stdout: Optional[str] = None,
                 setup: tuple[list[str], ...] = ()) -> Callable[[], None]:
        """A case: `setup` commands (checked) then `args` on etcd and on every Cairn member."""
        def run() -> None:
            for cluster in (self.etcd, self.cairn):
                for s in setup:
                    try:
                        cluster.etcdctl([0], *s, timeout=5)
                    except subprocess.CalledProcessError as e:
                        raise CaseFailure(f"setup {s} failed on {cluster.kind}: {e.stderr}")
            ref = self.run_ctl(self.etcd, 0, args, stdin)
            code, out, err = ref
            if expect_code is not None and code != expect_code:
                raise HarnessFailure(f"etcd itself exited {code} for {args}, expected "
                                     f"{expect_code}: {err[-300:]}")
            if expect_text is not None and expect_text not in err + out:
                raise HarnessFailure(f"etcd's output for {args} lacks {expect_text!r}: "
                                     f"{(err + out)[-300:]}")
            if expect_stdout is not None and out != expect_stdout:
                raise HarnessFailure(f"etcd's stdout for {args} is {out[:200]!r}, expected "
                                     f"{expect_stdout[:200]!r}")
            for i in range(self.cairn.size):
                got = self.run_ctl(self.cairn, i, args, stdin)
                if got != ref:
                    raise CaseFailure(
                        f"m{i} differs from etcd:\n    etcd:  exit {ref[0]} stdout "
                        f"{ref[1][:300]!r} stderr {ref[2][-400:]!r}\n    cairn: exit {got[0]} "
                        f"stdout {got[1][:300]!r} stderr {got[2][-400:]!r}")
        return run

    # ----- gRPC client (node) -----

    def node_puts(self, cluster: harness.Cluster, member: int, sizes: list[int]) -> list[dict]:
        script = os.path.join(self.workdir, "big_put.js")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(NODE_SCRIPT)
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        try:
            r = subprocess.run([self.node, script, cluster.members[member].client_url,
                                *map(str, sizes)], capture_output=True, text=True, timeout=60,
                               env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"node client against {cluster.kind} m{member} timed out")
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        if r.returncode != 0 or len(lines) != len(sizes) or any("fatal" in x for x in lines):
            raise HarnessFailure(f"node client failed (exit {r.returncode}): "
                                 f"{r.stdout[-300:]} {r.stderr[-500:]}")
        return lines

    @staticmethod
    def _normalize_grpc_message(msg: str) -> str:
        # grpc-go: "grpc: received message larger than max (N vs. M)";
        # gRPC C++: "Received message larger than max (N vs. M)".
        return re.sub(r"^(\d+ [A-Z_]+: )(grpc: )?[Rr]eceived message", r"\1received message", msg)

    def grpc_big_values(self) -> None:
        sizes = [int(1.6 * MIB), 2 * MIB, 5 * MIB]
        ref = self.node_puts(self.etcd, 0, sizes)
        expected = {int(1.6 * MIB): "3 INVALID_ARGUMENT: etcdserver: request is too large",
                    2 * MIB: "8 RESOURCE_EXHAUSTED", 5 * MIB: "8 RESOURCE_EXHAUSTED"}
        for r in ref:
            if r["ok"] or not r["message"].startswith(expected[r["size"]]):
                raise HarnessFailure(f"etcd's answer to a {r['size']}-byte put: {r}")
        for i in range(self.cairn.size):
            got = self.node_puts(self.cairn, i, sizes)
            for want, have in zip(ref, got):
                if have.get("ok"):
                    raise CaseFailure(f"m{i} accepted a {want['size']}-byte value")
                if (have["name"] != want["name"] or self._normalize_grpc_message(have["message"])
                        != self._normalize_grpc_message(want["message"])):
                    raise CaseFailure(f"m{i}, {want['size']}-byte put: etcd says {want['name']} "
                                      f"{want['message']!r}, Cairn {have['name']} "
                                      f"{have['message']!r}")
                if have["message"] != want["message"]:
                    note = (f"{want['size']}-byte put: etcd {want['message']!r}, Cairn "
                            f"{have['message']!r} (gRPC library text)")
                    if note not in self.notes:
                        self.notes.append(note)

    # ----- peer port -----

    def peer_target(self) -> tuple[int, int, dict[int, int]]:
        """(index of the member to attack: the leader, cluster id, member ids by index)."""
        leader = self.cairn.leader_index(timeout=10)
        ids: dict[int, int] = {}
        cluster_id = 0
        for i in range(self.cairn.size):
            st = self.cairn.status(i)
            if not st:
                raise HarnessFailure(f"no Status from m{i}")
            ids[i] = int(st["header"]["member_id"])
            cluster_id = int(st["header"]["cluster_id"])
        return leader, cluster_id, ids

    def peer_bad_frames(self, target: int, cluster_id: int, ids: dict[int, int]) -> None:
        port = self.cairn.members[target].peer_port
        other = ids[(target + 1) % self.cairn.size]
        garbage = bytearray(self.rng.randbytes(4096))
        garbage[0:4] = struct.pack("<I", 1000)          # a complete body, so the CRC is checked
        cases = [
            ("random garbage", bytes(garbage)),
            ("ASCII garbage (an HTTP request)", b"POST /raft HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("huge length", struct.pack("<II", 0xFFFFFFF0, 0) + b"x" * 64),
            ("zero length", struct.pack("<II", 0, 0) + b"x" * 64),
            ("codec version 9", frame(bytes([9, 64]) + struct.pack("<QQ", other, cluster_id))),
            ("unknown frame kind", frame(bytes([1, 200]) + bytes(16))),
            ("hello from another cluster, then junk",
             hello(other, cluster_id ^ 0x5A5A5A5A5A5A5A5A) + self.rng.randbytes(256)),
            ("hello from a non-member", hello(0x1234567890ABCDEF, cluster_id) + bytes(64)),
            ("a message before any hello",
             frame(bytes([1, 0]) + struct.pack("<QQ", other, ids[target]) + bytes(80 + 4 + 8 + 4))),
            ("valid hello, then junk", hello(other, cluster_id) + b"\xff" * 64),
            ("valid hello, then a second hello", hello(other, cluster_id) * 2),
        ]
        for what, payload in cases:
            expect_closed(port, payload, f"peer port, {what}")

    def peer_idle_connections(self, target: int) -> None:
        port = self.cairn.members[target].peer_port
        socks: list[socket.socket] = []
        try:
            for n in range(IDLE_CONNECTIONS):
                try:
                    socks.append(socket.create_connection((harness.HOST, port), timeout=5))
                except OSError as e:
                    raise CaseFailure(f"connection {n} to the peer port failed: {e}")
            opened = time.monotonic()
            # The cluster keeps serving while they are held.
            self.round_trip(tag="idle-peer-connections")
            time.sleep(1.0)
            early = sum(socket_closed(s) for s in socks)
            early_s = time.monotonic() - opened
            print(f"  ({early} of {IDLE_CONNECTIONS} silent connections closed after "
                  f"{early_s:.1f} s; the inbound limit is {PEER_INBOUND_MAX} connections, the "
                  f"peers' own included)", flush=True)
            deadline = opened + HELLO_DEADLINE_S
            open_ = [s for s in socks if not socket_closed(s)]
            for _ in range(1000):
                if not open_ or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
                open_ = [s for s in open_ if not socket_closed(s)]
            if open_:
                raise CaseFailure(
                    f"m{target} still holds {len(open_)} of {IDLE_CONNECTIONS} connections that "
                    f"never sent a hello open {time.monotonic() - opened:.1f} s after they "
                    f"connected (limit {HELLO_DEADLINE_S:g} s; {early} were closed after "
                    f"{early_s:.1f} s): silent connections occupy inbound peer slots "
                    f"indefinitely, so a member that reconnects meanwhile is refused")
        finally:
            for s in socks:
                s.close()

    def peer_port_cases(self) -> None:
        target, cluster_id, ids = self.peer_target()
        mport = self.cairn.members[target].metrics_port
        before = metric(mport, "cairn_peer_connections_refused_total")
        print(f"  (peer-port cases aim at m{target}, the leader; cluster id {cluster_id:x})",
              flush=True)

        def frames() -> None:
            self.peer_bad_frames(target, cluster_id, ids)
            self.round_trip(tag="bad-peer-frames")
            after = metric(mport, "cairn_peer_connections_refused_total")
            if before is not None and (after is None or after < before + 11):
                raise CaseFailure(f"cairn_peer_connections_refused_total went from {before} to "
                                  f"{after} after 11 refused connections")
        self.case("peer port: malformed frames and bad hellos are closed", frames)
        self.case(f"peer port: {IDLE_CONNECTIONS} silent connections",
                  lambda: self.peer_idle_connections(target))
        log = self.cairn.log_tail(target, 400)
        reasons = sorted({m.group(1) for m in
                          re.finditer(r"peer connection from \S+ closed: (.*)$", log, re.M)})
        if reasons:
            print("  (reasons in m%d's log: %s)" % (target, "; ".join(reasons)), flush=True)

    # ----- client and metrics ports -----

    def client_port_garbage(self) -> None:
        for i in range(self.cairn.size):
            port = self.cairn.members[i].client_port
            expect_closed(port, self.rng.randbytes(4096), f"m{i} client port, random bytes")
            expect_closed(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive"
                                b"\r\n\r\n", f"m{i} client port, HTTP/1.1 GET")
            expect_closed(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.rng.randbytes(1024),
                          f"m{i} client port, HTTP/2 preface then garbage")
        self.round_trip(tag="client-garbage")

    def client_port_bad_http2(self) -> None:
        """Protocol errors a hostile or broken HTTP/2 client can make: each must end in the
        server's GOAWAY and a closed connection, and never in a crash or a lost write."""
        def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
            return (len(payload).to_bytes(3, "big") + bytes([kind, flags]) +
                    stream.to_bytes(4, "big") + payload)
        start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
        # A request's headers as HPACK literals (never indexed, no Huffman).
        def literal(name: bytes, value: bytes) -> bytes:
            return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value
        headers = (literal(b":method", b"POST") + literal(b":scheme", b"http") +
                   literal(b":path", b"/etcdserverpb.KV/Range") +
                   literal(b":authority", b"x") + literal(b"content-type", b"application/grpc"))
        cases = {
            "first frame not SETTINGS": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                                        frame(6, 0, 0, b"12345678"),
            "HPACK index out of range": start + frame(1, 4, 1, b"\xff\x7f"),
            "even stream id": start + frame(1, 4, 2, headers),
            "DATA on an idle stream": start + frame(0, 0, 9, b"hello"),
            "frame above 16 KiB": start + frame(0, 0, 1, b"x" * 20000),
            "WINDOW_UPDATE overflowing the connection window":
                start + frame(8, 0, 0, (0x7fffffff).to_bytes(4, "big")) * 2,
            "SETTINGS of a bad length": start + frame(4, 0, 0, b"\x00\x04\x00"),
            "CONTINUATION without HEADERS": start + frame(9, 4, 1, headers),
            "PUSH_PROMISE from a client": start + frame(5, 4, 1, b"\x00\x00\x00\x02" + headers),
            "HEADERS interrupted by DATA": start + frame(1, 0, 1, headers[:5]) +
                                           frame(0, 0, 1, b"x"),
            "stream id going backwards": start + frame(1, 5, 5, headers) + frame(1, 5, 3, headers),
        }
        for i in range(self.cairn.size):
            port = self.cairn.members[i].client_port
            for what, payload in cases.items():
                got = expect_closed(port, payload, f"m{i} client port, {what}")
                # The server's SETTINGS, then (for every case but the first) a GOAWAY (type 7).
                if b"\x07\x00\x00\x00\x00\x00" not in got:
                    raise CaseFailure(f"m{i} client port, {what}: closed without a GOAWAY "
                                      f"(received {got[:80]!r})")
        self.round_trip(tag="client-http2")

    def client_port_http1(self) -> None:
        """etcd answers plain HTTP/1.1 /health and /version on its client port (load balancers
        and Kubernetes probes use them); so does Cairn, with the same JSON."""
        etcd_port = self.etcd.members[0].client_port
        status, etcd_health = http_get(etcd_port, "/health")
        _, etcd_version = http_get(etcd_port, "/version")
        if status != 200:
            raise HarnessFailure(f"etcd client port /health answered {status}")
        for i in range(self.cairn.size):
            port = self.cairn.members[i].client_port
            status, body = http_get(port, "/health")
            if status != 200 or json.loads(body) != json.loads(etcd_health):
                raise CaseFailure(f"m{i} client port /health: {status} {body!r}, etcd's "
                                  f"{etcd_health!r}")
            status, body = http_get(port, "/version")
            have, want = json.loads(body), json.loads(etcd_version)
            if status != 200 or sorted(have) != sorted(want) or \
                    have["etcdcluster"] != want["etcdcluster"]:
                raise CaseFailure(f"m{i} client port /version: {status} {body!r}, etcd's "
                                  f"{etcd_version!r}")
            status, body = http_get(port, "/metrics")
            if status != 200 or "etcd_server_has_leader 1" not in body:
                raise CaseFailure(f"m{i} client port /metrics: {status}")
            status, _ = http_get(port, "/no-such-path")
            if status != 404:
                raise CaseFailure(f"m{i} client port /no-such-path answered {status}")
        self.round_trip(tag="client-http1")

    def metrics_port(self) -> None:
        status, etcd_health = http_get(self.etcd.members[0].metrics_port, "/health")
        if status != 200:
            raise HarnessFailure(f"etcd /health answered {status}")
        for i in range(self.cairn.size):
            port = self.cairn.members[i].metrics_port
            value = metric(port, "etcd_server_has_leader")
            if value != 1:
                raise CaseFailure(f"m{i} /metrics: etcd_server_has_leader is {value}, expected 1")
            status, body = http_get(port, "/health")
            if status != 200 or json.loads(body) != {"health": "true"}:
                raise CaseFailure(f"m{i} /health: {status} {body!r}")
            if json.loads(body) != json.loads(etcd_health):
                raise CaseFailure(f"m{i} /health {body!r} differs from etcd's {etcd_health!r}")
            head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (9 * 1024) + b"\r\n\r\n"
            got = expect_closed(port, head, f"m{i} metrics port, 9 KiB request head")
            if got.startswith(b"HTTP/1.1 200"):
                raise CaseFailure(f"m{i} answered a 9 KiB request head with 200")
            expect_closed(port, b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"b" * (20 * 1024),
                          f"m{i} metrics port, 20 KiB head without an end")
            status, _ = http_get(port, "/metrics")
            if status != 200:
                raise CaseFailure(f"m{i} /metrics answered {status} after the oversized heads")

    # ----- data checks -----

    def round_trip(self, tag: str) -> None:
        """A put and a linearizable get on every member."""
        for i in range(self.cairn.size):
            key, value = f"bad-input/rt/{tag}/m{i}", f"{tag}-{i}-{time.monotonic_ns()}"
            try:
                self.cairn.etcdctl([i], "put", key, value, timeout=5)
                r = self.cairn.etcdctl([i], "get", key, "--print-value-only", timeout=5)
            except subprocess.CalledProcessError as e:
                raise CaseFailure(f"round trip on m{i} failed: {e.stderr.strip()[-300:]}")
            except subprocess.TimeoutExpired:
                raise CaseFailure(f"round trip on m{i} timed out")
            if r.stdout.strip() != value:
                raise CaseFailure(f"round trip on m{i}: got {r.stdout.strip()!r}, put {value!r}")

    def check_sentinels(self) -> None:
        for i in range(self.cairn.size):
            for consistency in ("l", "s"):
                got: dict[str, str] = {}
                for _ in range(50):
                    r = self.cairn.etcdctl([i], "get", "--prefix", "sentinel/",
                                           f"--consistency={consistency}", timeout=5, check=False)
                    lines = r.stdout.splitlines()
                    got = dict(zip(lines[0::2], lines[1::2])) if r.returncode == 0 else {}
                    if got == SENTINELS:
                        break
                    time.sleep(0.1)
                if got != SENTINELS:
                    how = "linearizable" if consistency == "l" else "serializable"
                    raise CaseFailure(f"m{i} ({how}) sentinels are {got}, expected {SENTINELS}")

    # ----- all cases -----

    def run(self) -> None:
        for n, (k, v) in enumerate(SENTINELS.items()):
            self.cairn.etcdctl([n % self.cairn.size], "put", k, v, timeout=5)
        big16 = "x" * int(1.6 * MIB)
        big2 = "y" * (2 * MIB)

        def txn(n: int) -> str:
            return "\n" + "".join(f"put txn/{i:03d} v{i}\n" for i in range(n)) + "\n\n"

        c = self.case
        c("empty key (put '' v)", self.ctl_case(
            ["put", "", "v"], expect_code=1, expect_text="etcdserver: key is not provided"))
        c("empty key (get '')", self.ctl_case(
            ["get", ""], expect_code=1, expect_text="etcdserver: key is not provided"))
        c("range end before key (get b a)", self.ctl_case(
            ["get", "b", "a"], expect_code=0, expect_stdout="",
            setup=(["put", "a", "1"], ["put", "b", "2"], ["put", "c", "3"])))
        c("delete range end before key (del c b)", self.ctl_case(
            ["del", "c", "b"], expect_code=0, expect_stdout="0"))
        c("negative revision (get foo --rev=-1)", self.ctl_case(
            ["get", "foo", "--rev=-1"], expect_code=0, expect_stdout="foo\nbar",
            setup=(["put", "foo", "bar"],)))
        c("1.6 MiB value via etcdctl stdin", self.ctl_case(
            ["put", "big"], stdin=big16, expect_code=1,
            expect_text="etcdserver: request is too large"))
        c("2 MiB value via etcdctl stdin", self.ctl_case(
            ["put", "big"], stdin=big2, expect_code=1,
            expect_text="trying to send message larger than max"))
        c("txn with 128 ops (the limit)", self.ctl_case(["txn"], stdin=txn(128), expect_code=0))
        c("txn with 129 ops", self.ctl_case(
            ["txn"], stdin=txn(129), expect_code=1,
            expect_text="etcdserver: too many operations in txn request"))
        c("txn with 200 ops", self.ctl_case(
            ["txn"], stdin=txn(200), expect_code=1,
            expect_text="etcdserver: too many operations in txn request"))
        c("1.6 / 2 / 5 MiB values via the etcd3 gRPC client", self.grpc_big_values)
        self.peer_port_cases()
        c("client port: garbage, HTTP/1.1 and bad HTTP/2 are closed", self.client_port_garbage)
        c("client port: HTTP/2 protocol errors end in GOAWAY", self.client_port_bad_http2)
        c("client port: HTTP/1.1 /health, /version, /metrics as etcd's", self.client_port_http1)
        c("metrics port: has_leader, /health, oversized request heads", self.metrics_port)
        c("every member serves a put + get round trip", lambda: self.round_trip(tag="final"))
        c("sentinels intact on every member", self.check_sentinels)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True, help="Cairn binary")
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default=harness.DEFAULT_ETCDCTL)
    ap.add_argument("--node", default=shutil.which("node") or "/usr/bin/node")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    for path in (a.cairn, a.etcd, a.etcdctl, a.node):
        if not os.access(path, os.X_OK):
            print(f"not an executable: {path}", file=sys.stderr)
            return 2
    if not os.path.isdir(os.path.join(NODE_MODULES, "etcd3")):
        print(f"the etcd3 npm package is not installed under {NODE_MODULES} "
              f"(scripts/install-npm-deps)", file=sys.stderr)
        return 2

    made_tmp = a.workdir is None
    workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="cairn-bad-input-"))
    started = time.monotonic()
    test: Optional[BadInputTest] = None
    rc = 0
    try:
        with harness.Cluster("etcd", 1, a.etcd, os.path.join(workdir, "etcd"),
                             etcdctl=a.etcdctl) as etcd, \
             harness.Cluster("cairn", 3, a.cairn, os.path.join(workdir, "cairn"),
                             etcdctl=a.etcdctl) as cairn:
            etcd.start(timeout_s=30)
            cairn.start(timeout_s=30)
            print(f"etcd and Cairn ready in {time.monotonic() - started:.1f} s", flush=True)
            test = BadInputTest(etcd, cairn, a.node, workdir)
            test.run()
            if test.failures:
                cairn.print_log_tails(lines=15)
    except HarnessFailure as e:
        print(f"harness failure: {e}", file=sys.stderr)
        rc = 2
    except Exception as e:  # noqa: BLE001 - harness failure
        print(f"harness failure: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 2
    if test is not None:
        for note in test.notes:
            print(f"note: {note}")
        if rc == 0 and test.failures:
            rc = 1
    print(f"{time.monotonic() - started:.1f} s in all")
    if rc == 0:
        print("PASS")
        if made_tmp and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    else:
        if test is not None and test.failures:
            print(f"FAIL: {len(test.failures)} case(s):")
            for f in test.failures:
                print(f"  {f}")
        print(f"workdir kept: {workdir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
