"""Run every benchmark module: ``python -m benchmarks [--only NAME ...] [--list] [ARGS]``.

A benchmark module is a module of this package with a ``main(argv) -> int``; modules
whose names start with ``_`` and the generator ``synthetic`` are not benchmarks.
Arguments that ``python -m benchmarks`` does not know are passed to each module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import benchmarks

NOT_BENCHMARKS = {"synthetic"}


def available() -> list[str]:
    """The names of the benchmark modules, sorted ("core" first)."""
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)
             if not m.name.startswith("_") and m.name not in NOT_BENCHMARKS]
    return sorted(names, key=lambda n: (n != "core", n))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args, rest = parser.parse_known_args(argv)
    names = available()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(names)}")
    worst = 0
    for name in args.only or names:
        module = importlib.import_module(f"benchmarks.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        print(f"== {name} ==", flush=True)
        worst = max(worst, int(module.main(rest) or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main())
