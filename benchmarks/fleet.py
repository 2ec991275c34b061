"""Moved to fleet/driver.py; run `python -m fleet.driver`. This shim keeps `python -m benchmarks.fleet`
working for scripts and CI configs written before the move. Don't add code here."""

from __future__ import annotations

import sys

from fleet.driver import main

if __name__ == "__main__":
    print("note: benchmarks.fleet moved to fleet.driver; run python -m fleet.driver", file=sys.stderr)
    sys.exit(main())
