"""Run every benchmark in this folder: `python -m bench [name ...]`.

Each bench_<name>.py is also runnable on its own (`python -m bench.bench_<name> --help`).
Figures are printed as ratios against a baseline measured in the same run, because the
machines this runs on are shared and noisy.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {names}", file=sys.stderr)
        return 2
    for name in wanted:
        print(f"== {name} ==", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
