"""Run every benchmark: one JSON line per measurement, then benchmarks/RESULTS.md is rewritten.

    python benchmarks/bench.py                  # the same as: simclr bench --results-dir benchmarks
    python benchmarks/bench.py --device cuda --suite pretrain
"""

import sys
from pathlib import Path

from simclr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--results-dir", str(Path(__file__).parent), *sys.argv[1:]]))
