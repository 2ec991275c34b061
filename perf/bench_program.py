"""How the Pulumi program scales: the whole program under mocks for fleets of 12, 48 and 192 cells.

Each size runs in a fresh process (so peak RSS is that size's own) and repeats a few times; we
report the median seconds per cell and the peak RSS. Target: at most 50 ms per cell, growing
linearly. Run with `make bench`; the figures go to perf/results/.
"""

from __future__ import annotations

import json
import platform
import resource
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {12: 1, 48: 4, 192: 16}  # cells -> repetitions of 6 distros x 2 arches
RUNS = 3
TARGET_MS_PER_CELL = 50.0


def one_run(repetitions: int) -> dict[str, float]:
    """Child process: evaluate the program once and resolve every result."""
    sys.path.insert(0, str(ROOT))
    import pulumi

    from tests.conftest import PROJECT, FleetMocks, resolve, set_stack_config

    mocks = FleetMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="bench", preview=False)
    set_stack_config({"backend": "libvirt", "repetitions": str(repetitions), "maxParallelCells": "4"})
    t0 = time.perf_counter()
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    results = resolve(program["results"])
    resolve(program["summary"])
    seconds = time.perf_counter() - t0
    assert len(results) == 12 * repetitions
    return {"seconds": seconds, "resources": len(mocks.resources),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(one_run(int(sys.argv[2]))))
        return 0
    out_dir = ROOT / "perf" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for cells, reps in SIZES.items():
        runs = []
        for i in range(RUNS):
            proc = subprocess.run([sys.executable, __file__, "--child", str(reps)], capture_output=True, text=True,
                                  check=True, timeout=600)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"[bench] {cells} cells, run {i + 1}/{RUNS}: {runs[-1]['seconds']:.2f} s", file=sys.stderr)
        seconds = statistics.median(r["seconds"] for r in runs)
        rows.append({"cells": cells, "resources": runs[0]["resources"], "median_seconds": round(seconds, 3),
                     "ms_per_cell": round(1000 * seconds / cells, 2),
                     "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1)})
    worst = max(r["ms_per_cell"] for r in rows)
    growth = rows[-1]["ms_per_cell"] / rows[0]["ms_per_cell"]
    report = {
        "benchmark": "pulumi program under mocks",
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}"
                   " cores",
        "runs_per_size": RUNS,
        "rows": rows,
        "target_ms_per_cell": TARGET_MS_PER_CELL,
        "worst_ms_per_cell": worst,
        "per_cell_growth_192_vs_12": round(growth, 2),
        "meets_target": worst <= TARGET_MS_PER_CELL,
    }
    path = out_dir / "program-mocks.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
