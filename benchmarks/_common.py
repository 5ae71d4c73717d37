"""Helpers shared by the benchmark modules: timed subprocesses, statistics, output."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def libpq(url: str) -> str:
    """A SQLAlchemy-style URL as a libpq one (for psycopg.connect), password kept."""
    from umbau.postgres.connect import normalize_url

    return normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def server(database_url: str | None, folder: str) -> Iterator[str]:
    """The maintenance-database URL of the named server, or of an embedded one whose data
    stays in ``.umbau/bench/<folder>`` between runs."""
    if database_url:
        yield database_url
        return
    from umbau.postgres import embedded

    running = embedded.start(ROOT / ".umbau" / "bench" / folder)
    try:
        yield running.url("postgres")
    finally:
        running.stop()


@dataclass
class Samples:
    """Wall-clock seconds of one measured thing, one sample per repetition."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the process

    def add(self, seconds: float, cpu: float | None = None) -> None:
        self.seconds.append(seconds)
        if cpu is not None:
            self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    def as_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "median_s": round(self.median, 4),
                "min_s": round(min(self.seconds), 4), "max_s": round(max(self.seconds), 4),
                "samples_s": [round(s, 4) for s in self.seconds]}
        if self.cpu:
            data["cpu_median_s"] = round(self.cpu_median, 4)
            data["cpu_samples_s"] = [round(s, 4) for s in self.cpu]
        return data


def executable(name: str) -> str:
    """A console script of this interpreter's environment (the venv), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# PYTHONDONTWRITEBYTECODE would make every run compile umbau's sources (an editable
# install) and the revision files again, which no deployed installation does.
_DROPPED = {"DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}


def clean_environ(**extra: str) -> dict[str, str]:
    """os.environ without UMBAU_*, DATABASE_URL and PYTHONDONTWRITEBYTECODE, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UMBAU_") and k not in _DROPPED}
    env.update(extra)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str],
              ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """Run ``cmd``; (wall-clock seconds, CPU seconds of the process); exit if it fails."""
    cpu_before = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - began
    cpu = _children_cpu() - cpu_before
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited with {done.returncode}:\n"
                         f"{done.stdout}\n{done.stderr}")
    return elapsed, cpu


def ratio(numerator: Samples, denominator: Samples) -> float:
    """The ratio of the medians."""
    return numerator.median / denominator.median


def paired_ratio(numerator: Samples, denominator: Samples) -> float:
    """The median of the per-repetition ratios: robust against load that drifts over a run."""
    return statistics.median(n / d for n, d in zip(numerator.seconds, denominator.seconds,
                                                   strict=True))


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells)

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "host": platform.node()}


def write_results(name: str, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as benchmarks/results/<name>-<UTC timestamp>.json; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path
