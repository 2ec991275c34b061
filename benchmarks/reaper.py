"""Moved to fleet/reaper.py; run `python -m fleet.reaper`. This shim keeps `python -m benchmarks.reaper`
working, because teardown banners in older run logs tell people to run it. Don't add code here."""

from __future__ import annotations

import sys

from fleet.reaper import main

if __name__ == "__main__":
    print("note: benchmarks.reaper moved to fleet.reaper; run python -m fleet.reaper", file=sys.stderr)
    sys.exit(main())
