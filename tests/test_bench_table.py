"""bench/table.py's tg roofline share: each tg run against the bandwidth measured in its own round."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import table  # noqa: E402  (bench/ is scripts, not a package)


def _run(tg: list[float]) -> table.EngineRun:
    run = table.EngineRun("neox_cpp", "q8_0 GGUF", 0, 10**9)  # 1 GB read per token
    run.tok_s = {"tg32": tg}
    return run


def test_each_run_against_its_own_rounds_bandwidth() -> None:
    # rounds at 20, 20 and 60 GB/s: shares 10/20, 20/20, 30/60 -> median 50%
    assert table.tg_fraction(_run([10.0, 20.0, 30.0]), 60.0, [20.0, 20.0, 60.0]) == "50%"
    # one bandwidth for the whole run (the larger of before / after): median 20 / 60
    assert table.tg_fraction(_run([10.0, 20.0, 30.0]), 60.0) == "33%"


def test_falls_back_to_one_bandwidth_when_rounds_do_not_match_runs() -> None:
    assert table.tg_fraction(_run([10.0, 20.0]), 40.0, [20.0, 20.0, 60.0]) == "38%"
    assert table.tg_fraction(_run([]), 40.0, [20.0]) == ""


def test_figures_never_take_an_exponent() -> None:
    assert table.fmt([1320.4, 1390.2, 1420.0]) == "1390 (1320–1420)"
    assert table.fmt([999.6]) == "1000"
    assert table.fmt([5.437, 5.15, 5.57]) == "5.44 (5.15–5.57)"
    assert table.fmt([98.5]) == "98.5"
