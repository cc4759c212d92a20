"""libgptneox.so exports exactly the C API of include/gptneox.h, with C linkage (nm -D)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from neox_cpp import _lib

HEADER = Path(__file__).resolve().parent.parent / "include" / "gptneox.h"


def test_exports_are_the_header_functions() -> None:
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run(["nm", "-D", "--defined-only", str(_lib.lib_path())], check=True,
                         capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    declared = set(re.findall(r"GPTNEOX_API\s[^;(]*?\b(gptneox_\w+)\s*\(", HEADER.read_text()))
    assert "gptneox_token_nl" in declared
    assert declared == exported, (sorted(declared - exported), sorted(exported - declared))
