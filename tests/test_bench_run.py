"""bench/run.py's library snapshots: old ones go, the current one and recent ones stay."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import run as bench_run  # noqa: E402  (bench/ is scripts, not a package)


def test_snapshots_of_other_builds_go_after_a_day(tmp_path: Path) -> None:
    now = 2_000_000_000.0
    ages = {"libgptneox-1.so": 2 * 86400, "libgptneox-2.so": 3600, "libgptneox-3.so": 5 * 86400,
            "other.so": 9 * 86400}
    for name, age in ages.items():
        f = tmp_path / name
        f.write_bytes(b"x")
        os.utime(f, (now - age, now - age))
    bench_run.drop_old_snapshots(tmp_path, tmp_path / "libgptneox-3.so", now)
    # -1: another build's, two days old; -2: an hour old (a run may still load it); -3: the current one;
    # other.so: not a snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["libgptneox-2.so", "libgptneox-3.so", "other.so"]
