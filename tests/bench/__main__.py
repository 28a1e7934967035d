"""``make bench`` / ``make bench-smoke``: run every benchmark of tests/bench in turn.

Each benchmark prints its own table and creates (and drops) its own PostgreSQL
database. ``--smoke`` runs them small (CI-sized) so the harness never rots; the
full province-scale suite is issue 9's work and grows here.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = {
    # name: (full-size arguments, smoke arguments)
    "tests.bench.bench_deadline_scan": (
        ["--cases", "200000"],
        ["--cases", "2000", "--tenants", "3"],
    ),
}


def main() -> int:
    smoke = "--smoke" in sys.argv[1:]
    failed = 0
    for module, (full, small) in BENCHMARKS.items():
        print(f"== {module}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", module, *(small if smoke else full)])
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
