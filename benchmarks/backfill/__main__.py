from __future__ import annotations

import sys

from benchmarks.backfill import main

sys.exit(main(sys.argv[1:]))
