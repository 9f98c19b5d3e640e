#!/usr/bin/env python3
"""etcdctl transcript comparison: one fixed etcdctl script against a 3-member etcd cluster and
against a 3-member Cairn cluster; the normalized transcripts must be identical.

    python3 tests/integration/test_etcdctl_transcript.py --cairn build/bin/cairn
    python3 tests/integration/test_etcdctl_transcript.py --self-check     # etcd against etcd

Options: --etcd PATH (default /usr/bin/etcd), --etcdctl PATH (default /usr/bin/etcdctl),
--workdir DIR (data dirs, logs and the two transcripts; default a temporary directory, removed
after a pass), --keep (keep the workdir after a pass), --budget SECONDS (time allowed per cluster
for the script; steps past it are recorded as skipped, which fails the comparison).

Every command goes to member m0 except the steps marked for m1 or m2 (on Cairn: follower reads
and forwarded writes). Each step records the command, its exit code, stdout and stderr.
Normalization, all of it in normalize_*() below:
  * JSON output (-w json): the values of header fields cluster_id, member_id and raft_term become
    placeholders wherever such a field is present (presence is kept; revision is kept).
  * -w fields output: the "ClusterID", "MemberID" and "RaftTerm" lines likewise.
  * etcdctl's client log lines on stderr (zap JSON, one per failed RPC attempt, with a timestamp,
    a random client id and the endpoint) become "[etcdctl log] <level> <msg>: <error>", which keeps
    the gRPC status code and the error text; capnslog-style timestamp prefixes are stripped.
  * any member's client/peer/metrics address becomes <m{i}-client> etc.
Exit status: 0 identical, 1 transcripts differ (a unified diff is printed), 2 harness failure.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# ----- the script ------------------------------------------------------------------------------
# A step: (member index, etcdctl arguments, stdin or None). Revisions in the comments are those
# etcd gives on a fresh cluster (its first write is revision 2).

TXN_SUCCEEDS = """\
value("foo") = "bar3"
value("foo") > "bar"
version("foo") = "3"
create("foo") = "2"
mod("foo") > "3"
mod("foo") < "1000"
version("never-written") = "0"
create("never-written") = "0"

put t1 one
put --prev-kv foo bar4
get foo
del --prev-kv k5

put t1 should-not-happen

"""

TXN_FAILS = """\
value("foo") = "bar4"
version("foo") = "1"

put t2 should-not-happen

get --prefix t
put t2 two
del --prev-kv t1

"""

# A value compare on a missing key is false even against "" (etcd's rule).
TXN_MISSING_VALUE = """\
value("never-written") = ""

put t2 should-not-happen

get never-written

"""

# A get before and after a put in one txn: their headers carry different revisions in etcd.
TXN_JSON_SUCCEEDS = """\
create("t2") > "0"
value("t2") != "zzz"

get --prefix t
put t3 three
get --prefix t
del --prev-kv t2
get t2

get t2

"""

TXN_JSON_FAILS = """\
value("t3") = "nope"

put t4 four

get --prefix t
put --prev-kv t3 three-again

"""

TXN_DUPLICATE_KEY = """\


put dup a
put dup b


"""

# A put inside a delete range of the same branch counts as a duplicate key too.
TXN_PUT_INSIDE_DELETE = """\


put t9 nine
del --prefix t


"""

TXN_EMPTY = """\



"""

TXN_FORWARDED = """\
version("fwd/a") = "2"

put fwd/b from-m2-txn
get --prefix fwd/

get fwd/a

"""

TXN_MISSING_FAILURE_SECTION = """\
value("foo") = "bar4"

put t5 five
"""


def build_script(compact_at: int, future: int) -> list[tuple[int, list[str], Optional[str]]]:
    s: list[tuple[int, list[str], Optional[str]]] = []

    def m0(*args: str, stdin: Optional[str] = None) -> None:
        s.append((0, list(args), stdin))

    def on(member: int, *args: str, stdin: Optional[str] = None) -> None:
        s.append((member, list(args), stdin))

    # put / get, put --prev-kv, put --ignore-value, -w json and -w fields
    m0("get", "foo")                                     # nothing yet
    m0("get", "foo", "-w", "json")                       # header only
    m0("put", "foo", "bar")                              # rev 2
    m0("get", "foo")
    m0("get", "foo", "-w", "json")
    m0("put", "--prev-kv", "foo", "bar2")                # rev 3
    m0("put", "--prev-kv", "foo", "bar3", "-w", "json")  # rev 4
    m0("put", "foo2", "x", "-w", "json")                 # rev 5
    m0("put", "--prev-kv", "brand-new", "v", "-w", "json")  # rev 6, no prev_kv
    m0("put", "--ignore-value", "foo2")                  # rev 7, value stays "x"
    m0("get", "foo2", "-w", "json")
    m0("put", "--ignore-value", "never-written")         # error: key not found
    m0("put", "--ignore-value", "foo2", "newval")        # etcdctl refuses (client side)
    m0("put", "", "empty-key")                           # error: key is not provided
    m0("put", "sp ace", "\u00fc \u2603", "-w", "json")   # rev 8, non-ASCII value
    m0("get", "sp ace", "--hex")
    m0("get", "foo", "-w", "fields")
    m0("put", "--", "-dash", "-v")                       # rev 9
    m0("get", "--", "-dash")

    # a data set for ranges and sorting: key, value, version, create and mod orders all differ
    for k, v in [("k3", "c"), ("k1", "e"), ("k5", "a"), ("k2", "d"), ("k4", "b"),
                 ("k1", "e2"), ("k4", "b2"), ("k4", "b3"), ("k2", "d2"), ("ka", "z")]:
        m0("put", k, v)                                  # revs 10..19
    m0("get", "k", "--prefix")
    m0("get", "k", "--prefix", "-w", "json")
    m0("get", "k", "--prefix", "--keys-only")
    m0("get", "k", "--prefix", "--keys-only", "-w", "json")
    m0("get", "k", "--prefix", "--print-value-only")
    m0("get", "k", "--prefix", "--count-only")           # etcdctl 3.4 has no --count-only
    m0("get", "k", "--prefix", "--limit=2")
    m0("get", "k", "--prefix", "--limit=2", "-w", "json")  # more: true, count: all
    m0("get", "k", "--prefix", "--limit=100", "-w", "json")
    m0("get", "k", "--prefix", "--limit=2", "-w", "fields")
    for target in ("KEY", "VERSION", "CREATE", "MODIFY", "VALUE"):
        for order in ("ASCEND", "DESCEND"):
            m0("get", "k", "--prefix", f"--sort-by={target}", f"--order={order}")
    m0("get", "k", "--prefix", "--sort-by=VALUE")        # target without order
    m0("get", "k", "--prefix", "--sort-by=VERSION")
    m0("get", "k", "--prefix", "--order=DESCEND")        # order without target
    m0("get", "k", "--prefix", "--order=ASCEND")
    m0("get", "k", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--limit=3", "-w", "json")
    m0("get", "k", "--prefix", "--sort-by=VERSION", "--order=ASCEND", "--limit=2")
    m0("get", "k", "--prefix", "--order=DESCEND", "--limit=1", "--keys-only")
    m0("get", "k2", "k4")                                # [k2, k4)
    m0("get", "k2", "k4", "-w", "json")
    m0("get", "k4", "k2")                                # empty range
    m0("get", "--from-key", "k3")
    m0("get", "--from-key", "k3", "--keys-only", "--limit=2", "-w", "json")
    m0("get", "--from-key", "", "--keys-only")           # every key
    m0("get", "", "--prefix", "--keys-only")             # every key
    m0("get", "--prefix", "k", "--consistency=s")        # serializable, on the member written to

    # reads at past revisions
    m0("get", "foo", "--rev=2")
    m0("get", "foo", "--rev=3", "-w", "json")
    m0("get", "k", "--prefix", "--rev=12")
    m0("get", "k", "--prefix", "--rev=12", "-w", "json")
    m0("get", "k1", "--rev=1")                           # before anything existed
    m0("get", "k1", "--rev=-1")                          # <= 0 means "current"
    m0("get", "foo", f"--rev={future}")                  # error: future revision

    # follower reads and forwarded writes
    on(1, "get", "foo", "-w", "json")
    on(2, "get", "k", "--prefix", "--sort-by=VALUE", "--order=DESCEND")
    on(1, "put", "fwd/a", "from-m1")                     # rev 20
    on(2, "get", "fwd/a", "-w", "json")
    on(2, "put", "--prev-kv", "fwd/a", "from-m2", "-w", "json")  # rev 21
    on(1, "get", "--prefix", "fwd/")
    m0("get", "--prefix", "fwd/", "-w", "json")
    on(2, "txn", stdin=TXN_FORWARDED)                    # rev 22
    on(1, "del", "--prev-kv", "fwd/b")                   # rev 23
    on(2, "get", "", "--prefix", "--keys-only")

    # txn from stdin: interactive prompts, success and failure, compares on all four targets
    m0("txn", "-i", stdin=TXN_SUCCEEDS)
    m0("txn", "-i", stdin=TXN_FAILS)
    m0("txn", stdin=TXN_FAILS)                           # non-interactive, fails again
    m0("txn", stdin=TXN_MISSING_VALUE)
    m0("txn", "-w", "json", stdin=TXN_JSON_SUCCEEDS)
    m0("txn", "-w", "json", stdin=TXN_JSON_FAILS)
    m0("txn", "-w", "json", stdin=TXN_MISSING_VALUE)
    m0("txn", stdin=TXN_DUPLICATE_KEY)                   # error: duplicate key
    m0("txn", stdin=TXN_PUT_INSIDE_DELETE)               # error: duplicate key
    m0("txn", "-w", "json", stdin=TXN_EMPTY)             # succeeds, no ops, no new revision
    m0("txn", stdin=TXN_MISSING_FAILURE_SECTION)         # etcdctl: EOF (client side)
    m0("get", "", "--prefix", "-w", "json")

    # del: single, range, --prefix, --prev-kv, --from-key, -w json
    for k in ("d/1", "d/2", "d/3", "e1", "e2", "z1", "z2", "z3"):
        m0("put", k, "v-" + k)
    m0("del", "nothing-here")                            # 0
    m0("del", "nothing-here", "-w", "json")
    m0("del", "e1")
    m0("del", "--prev-kv", "e2", "-w", "json")
    m0("del", "--prefix", "--prev-kv", "d/")
    m0("del", "--prefix", "d/", "-w", "json")            # nothing left: deleted omitted
    m0("del", "k1", "k3")                                # [k1, k3)
    m0("del", "--from-key", "z2", "--prev-kv", "-w", "json")
    m0("del", "--from-key", "z")
    m0("get", "", "--prefix", "--keys-only")

    # compaction, then reads below, at and above the compacted revision
    m0("compaction", str(compact_at))
    m0("get", "foo", f"--rev={compact_at - 1}")          # error: compacted
    m0("get", "foo", f"--rev={compact_at}", "-w", "json")
    m0("get", "k", "--prefix", f"--rev={compact_at + 1}", "--keys-only")
    m0("compaction", str(compact_at - 2))                # error: compacted
    m0("compaction", str(compact_at))                    # error: compacted (same revision)
    m0("compaction", str(future))                        # error: future revision
    m0("compaction", "--physical", str(compact_at + 3))
    m0("get", "foo", f"--rev={compact_at + 2}")          # error: compacted
    on(1, "get", "foo", f"--rev={compact_at + 1}")       # error: compacted, on a follower
    on(2, "get", "foo", f"--rev={compact_at + 3}", "-w", "json")
    m0("get", "foo", "-w", "json")
    m0("put", "after-compaction", "1", "-w", "json")
    m0("get", "", "--from-key", "-w", "json")
    return s


COMPACT_AT = 30       # well inside the history the script writes (about 45 revisions)
FUTURE_REV = 100000


# ----- normalization ---------------------------------------------------------------------------

_HEADER_PLACEHOLDERS = {"cluster_id": "<cluster_id>", "member_id": "<member_id>",
                        "raft_term": "<raft_term>"}
_FIELDS_RE = re.compile(r'^"(ClusterID|MemberID|RaftTerm)" : \d+$')
_CAPNSLOG_RE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z? [A-Z] \| ")


def _scrub_json(value):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "header" and isinstance(v, dict):
                out[k] = {hk: (_HEADER_PLACEHOLDERS[hk] if hk in _HEADER_PLACEHOLDERS else
                               _scrub_json(hv)) for hk, hv in v.items()}
            else:
                out[k] = _scrub_json(v)
        return out
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def normalize_stdout(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("{") or stripped.startswith("["):
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if obj is not None:
                # Key order as etcdctl printed it (dicts keep insertion order).
                lines.append(json.dumps(_scrub_json(obj), ensure_ascii=False,
                                        separators=(",", ":")))
                continue
        m = _FIELDS_RE.match(line)
        if m:
            lines.append(f'"{m.group(1)}" : <{m.group(1)}>')
            continue
        lines.append(line)
    return "\n".join(lines)


def normalize_stderr(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("{") and '"level"' in stripped:
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "msg" in obj:
                entry = f"[etcdctl log] {obj.get('level', '?')} {obj['msg']}"
                if "error" in obj:
                    entry += f": {obj['error']}"
                lines.append(entry)
                continue
        lines.append(_CAPNSLOG_RE.sub("", line))
    return "\n".join(lines)


def address_rewriter(cluster: harness.Cluster):
    table = []
    for m in cluster.members:
        for port, what in ((m.client_port, "client"), (m.peer_port, "peer"),
                           (m.metrics_port, "metrics")):
            table.append((f"127.0.0.1:{port}", f"<{m.name}-{what}>"))
    # Longest first so that a port never matches inside a longer one.
    table.sort(key=lambda t: -len(t[0]))
    pattern = re.compile("|".join(re.escape(a) for a, _ in table) + r"(?!\d)")
    lookup = dict(table)
    return lambda text: pattern.sub(lambda mm: lookup[mm.group(0)], text)


# ----- running ---------------------------------------------------------------------------------

def _shell_quote(arg: str) -> str:
    if arg and re.fullmatch(r"[A-Za-z0-9_./=:,+@%-]+", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def run_script(cluster: harness.Cluster, budget_s: float) -> str:
    """Run the script against a started cluster; returns the normalized transcript."""
    rewrite = address_rewriter(cluster)
    script = build_script(COMPACT_AT, FUTURE_REV)
    out: list[str] = []
    deadline = time.monotonic() + budget_s
    for n, (member, args, stdin) in enumerate(script, 1):
        shown = " ".join(_shell_quote(a) for a in args)
        out.append(f"### {n:03d} [m{member}] etcdctl {shown}")
        if stdin is not None:
            out.append("--- stdin")
            out.append(stdin.rstrip("\n"))
        if time.monotonic() > deadline:
            out.append(f"--- skipped: time budget of {budget_s:g} s exhausted")
            continue
        try:
            r = cluster.etcdctl([member], *args, input=stdin, timeout=5, check=False)
            code, stdout, stderr = r.returncode, r.stdout, r.stderr
        except harness.subprocess.TimeoutExpired:
            code, stdout, stderr = "timeout", "", ""
        out.append(f"--- exit {code}")
        if stdout:
            out.append("--- stdout")
            out.append(rewrite(normalize_stdout(stdout.rstrip("\n"))))
        if stderr:
            out.append("--- stderr")
            out.append(rewrite(normalize_stderr(stderr.rstrip("\n"))))
    alive = " ".join(f"m{i}={'up' if cluster.member_alive(i) else 'DOWN'}"
                     for i in range(cluster.size))
    out.append(f"### members after the script: {alive}")
    return "\n".join(out) + "\n"


def transcript_for(kind: str, binary: str, etcdctl_bin: str, workdir: str,
                   budget_s: float) -> str:
    os.makedirs(workdir, exist_ok=True)
    started = time.monotonic()
    with harness.Cluster(kind, 3, binary, workdir, etcdctl=etcdctl_bin) as cluster:
        cluster.start(timeout_s=30)
        ready = time.monotonic()
        text = run_script(cluster, budget_s)
        ran = time.monotonic()
    stopped = time.monotonic()
    print(f"{kind} ({binary}): ready in {ready - started:.1f} s, script {ran - ready:.1f} s, "
          f"stop {stopped - ran:.1f} s", flush=True)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", help="Cairn binary, or 'etcd' to compare etcd against etcd")
    ap.add_argument("--self-check", action="store_true",
                    help="compare etcd against etcd (proves the harness is deterministic)")
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default=harness.DEFAULT_ETCDCTL)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--budget", type=float, default=60, help="seconds per cluster for the script")
    a = ap.parse_args(argv)

    if a.self_check or a.cairn == "etcd":
        other_kind, other_binary, other_label = "etcd", a.etcd, "etcd-again"
    elif a.cairn:
        other_binary = a.cairn
        other_kind = "etcd" if os.path.basename(a.cairn).startswith("etcd") else "cairn"
        other_label = "cairn" if other_kind == "cairn" else "etcd-again"
    else:
        ap.error("give --cairn PATH, --cairn etcd or --self-check")
    for path in (a.etcd, other_binary, a.etcdctl):
        if not os.access(path, os.X_OK):
            print(f"not an executable: {path}", file=sys.stderr)
            return 2

    made_tmp = a.workdir is None
    workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="etcdctl-transcript-"))
    os.makedirs(workdir, exist_ok=True)
    started = time.monotonic()
    try:
        expected = transcript_for("etcd", a.etcd, a.etcdctl, os.path.join(workdir, "etcd"),
                                  a.budget)
        actual = transcript_for(other_kind, other_binary, a.etcdctl,
                                os.path.join(workdir, other_label), a.budget)
    except Exception as e:  # noqa: BLE001 - harness failure, not a transcript mismatch
        print(f"harness failure: {type(e).__name__}: {e}\nworkdir kept: {workdir}",
              file=sys.stderr)
        return 2
    exp_path = os.path.join(workdir, "etcd.transcript")
    act_path = os.path.join(workdir, f"{other_label}.transcript")
    with open(exp_path, "w") as f:
        f.write(expected)
    with open(act_path, "w") as f:
        f.write(actual)

    steps = len(build_script(COMPACT_AT, FUTURE_REV))
    if expected == actual:
        print(f"PASS: {steps} etcdctl steps, transcripts identical "
              f"({time.monotonic() - started:.1f} s in all)")
        if made_tmp and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"transcripts: {exp_path} {act_path}")
        return 0
    diff = difflib.unified_diff(expected.splitlines(keepends=True),
                                actual.splitlines(keepends=True),
                                fromfile=exp_path, tofile=act_path, n=6)
    sys.stdout.writelines(diff)
    print(f"FAIL: transcripts differ; workdir kept: {workdir}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
