"""``make bench`` / ``make bench-smoke``: run every benchmark of tests/bench in turn.

Each benchmark prints its own table and writes ``tests/bench/results/<name>.json``.
The full run generates the 1M-case province once (``xf_bench_province``, kept,
reused by the case list, scaling curve and province overview; the deadline scan
seeds its own open cases). ``--smoke`` runs everything small so the harness never
rots (CI). Tables and the machine they ran on: docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS: dict[str, tuple[list[str], list[str] | None]] = {
    # name: (full-size arguments, smoke arguments or None)
    "tests.bench.bench_intake": (
        ["--cases", "4000", "--tenants", "4", "--workers", "1,2"],
        ["--cases", "100", "--tenants", "2", "--workers", "1", "--concurrency", "8"],
    ),
    "tests.bench.bench_authz": (
        ["--assignments", "10000"],
        ["--assignments", "2000", "--checks", "2000", "--loads", "20"],
    ),
    "tests.bench.bench_statements": (["--sizes", "5,50,100"], ["--sizes", "2,12"]),
    "tests.bench.bench_deadline_scan": (
        # the 1M open cases are seeded once into xf_scan1m_seed and cloned for each run
        ["--cases", "1000000", "--tenants", "20", "--seed-cache", "xf_scan1m_seed", "--repack"],
        ["--cases", "10000", "--tenants", "4"],
    ),
    # the provinces of 10k, 100k and 1M cases are generated once (by the first run that
    # needs them) and kept for the next runs; list, detail and board at each size
    **{
        f"tests.bench.bench_case_list:{size}": (
            ["--cases", str(size), "--db", db, "--reuse", "--keep", "--seconds", "5"],
            # list, detail and board (~1.5 min in all): 1 s per cell keeps the smoke short
            ["--cases", "10000", "--tenants", "3", "--seconds", "1"] if size == 10_000 else None,
        )
        for size, db in (
            (10_000, "xf_bench_province_10000"),
            (100_000, "xf_bench_province_100000"),
            (1_000_000, "xf_bench_province"),
        )
    },
    "tests.bench.bench_scaling": (
        [
            "--sizes",
            "10000,100000,1000000",
            "--db",
            "xf_bench_province",
            "--reuse",
            "--keep",
            "--size-dbs",
            "xf_bench_province",
        ],
        [
            "--sizes",
            "2000,10000",
            "--tenants",
            "3",
            "--seconds",
            "1.5",
            "--png",
            "tests/bench/results/scaling-smoke.png",
        ],
    ),
    "tests.bench.bench_province_overview": (
        ["--cases", "1000000", "--tenants", "20", "--db", "xf_bench_province", "--reuse"],
        ["--cases", "10000", "--tenants", "20", "--repeat", "2", "--db", "xf_bench_overview_smoke"],
    ),
}


def main() -> int:
    smoke = "--smoke" in sys.argv[1:]
    failed = 0
    for name, (full, small) in BENCHMARKS.items():
        arguments = small if smoke else full
        if arguments is None:  # not part of the smoke run
            continue
        print(f"== {name}", flush=True)
        module = name.split(":")[0]  # "module:label" runs one module more than once
        failed |= subprocess.call([sys.executable, "-m", module, *arguments])
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
