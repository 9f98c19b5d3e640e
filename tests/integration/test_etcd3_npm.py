#!/usr/bin/env python3
"""The Node.js etcd3 client (npm `etcd3`, tests/integration/npm) against a 3-member Cairn cluster:
put/get, ranges with limit/sort/count/keys-only, delete with prev kv, txns, namespaces and
concurrent puts, through every member (the client spreads calls over the endpoints it is given,
so followers forward writes and serve follower reads).

    python3 tests/integration/test_etcd3_npm.py --cairn build/bin/cairn

Needs `scripts/install-npm-deps` to have run (make test does). Exit 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(HERE, "npm", "node_modules", "etcd3")):
        print("FAIL: tests/integration/npm/node_modules/etcd3 is missing: run scripts/install-npm-deps",
              file=sys.stderr)
        return 1
    workdir = a.workdir or tempfile.mkdtemp(prefix="cairn-npm-")
    try:
        with harness.Cluster("cairn", 3, a.cairn, workdir) as cluster:
            cluster.start()
            for endpoints in (cluster.endpoints(), cluster.endpoints([1]), cluster.endpoints([2])):
                result = subprocess.run(
                    [a.node, os.path.join(HERE, "npm", "etcd3_client_test.js"), endpoints],
                    capture_output=True, text=True, timeout=90)
                sys.stdout.write(result.stdout)
                if result.returncode != 0:
                    sys.stderr.write(result.stderr)
                    cluster.print_log_tails()
                    print(f"FAIL: etcd3 client test against {endpoints} exited "
                          f"{result.returncode}; workdir kept: {workdir}", file=sys.stderr)
                    return 1
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as error:
        print(f"FAIL: {type(error).__name__}: {error}; workdir kept: {workdir}", file=sys.stderr)
        return 1
    print("PASS: the etcd3 npm client works against every member")
    if a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
