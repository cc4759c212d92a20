"""neox_cpp._lib: the ctypes bindings of include/gptneox.h."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from neox_cpp import _lib

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "gptneox.h"


def _header_functions() -> Dict[str, int]:
    """name -> number of parameters, for every GPTNEOX_API function of the header."""
    text = HEADER.read_text(encoding="utf-8")
    out: Dict[str, int] = {}
    for decl in re.findall(r"GPTNEOX_API\s+([^;]*?\([^;]*?\))\s*;", text, re.S):
        m = re.match(r"(.*?)\b(gptneox_\w+)\s*\((.*)\)$", " ".join(decl.split()))
        assert m, decl
        args = m.group(3).strip()
        out[m.group(2)] = 0 if args == "void" else len(args.split(","))
    return out


def test_every_header_function_is_bound_with_its_arity() -> None:
    functions = _header_functions()
    assert len(functions) > 50
    for name, n_args in functions.items():
        fn = getattr(_lib, name, None)
        assert fn is not None, f"{name} has no binding in neox_cpp._lib"
        assert len(fn.argtypes) == n_args, name
        # the comment must stand in the file that binds it (_lib.py or a section file it re-exports)
        source = Path(fn.__wrapped__.__code__.co_filename).read_text(encoding="utf-8")
        assert re.search(rf"^# .*\b{name}\(", source, re.M), f"{name}: C declaration comment missing"


@pytest.mark.parametrize("struct_id, cls", sorted(_lib.STRUCTS.items()))
def test_struct_sizes_match_the_library(struct_id: int, cls: type) -> None:
    assert _lib.gptneox_struct_size(struct_id) == ctypes.sizeof(cls)


def test_unknown_struct_id_has_size_zero() -> None:
    assert _lib.gptneox_struct_size(12345) == 0


def test_missing_file_raises_io_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "no-such-model.gguf"
    with pytest.raises(_lib.NeoxError) as info:
        _lib.Model(path)
    assert info.value.status == _lib.GPTNEOX_STATUS_IO
    assert str(path) in str(info.value)


def test_file_that_is_not_gguf_raises_format_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-model.gguf"
    path.write_bytes(b"this is a text file, not a GGUF model\n" * 4)
    with pytest.raises(_lib.NeoxError) as info:
        _lib.Model(path)
    assert info.value.status == _lib.GPTNEOX_STATUS_FORMAT
    assert str(path) in str(info.value)
    assert "GGUF" in str(info.value)


def test_error_state_is_per_call(tmp_path: Path) -> None:
    with pytest.raises(_lib.NeoxError):
        _lib.Model(tmp_path / "missing.gguf")
    _lib.gptneox_clear_error()
    assert _lib.gptneox_last_status() == 0
    assert _lib.gptneox_last_error() in (b"", None)


def _import_lib_with(env_value: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NEOX_CPP_LIB=env_value)
    return subprocess.run(
        [sys.executable, "-c", "import neox_cpp._lib"], env=env, capture_output=True, text=True, cwd=ROOT
    )


def test_neox_cpp_lib_pointing_nowhere_is_a_clear_import_error(tmp_path: Path) -> None:
    proc = _import_lib_with(str(tmp_path / "libgptneox-missing.so"))
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr
    assert "NEOX_CPP_LIB" in proc.stderr and "does not exist" in proc.stderr


def test_neox_cpp_lib_that_is_not_a_library_is_a_clear_import_error(tmp_path: Path) -> None:
    bogus = tmp_path / "libgptneox.so"
    bogus.write_bytes(b"not an ELF file")
    proc = _import_lib_with(str(bogus))
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr and "failed to load" in proc.stderr


def test_neox_cpp_lib_is_honoured() -> None:
    proc = _import_lib_with(str(_lib.lib_path()))
    assert proc.returncode == 0, proc.stderr


def test_model_and_context_wrappers(tiny_gguf: Path) -> None:
    with _lib.Model(tiny_gguf) as model:
        assert model.n_vocab > 256
        assert model.metadata()["general.architecture"] == "gptneox"
        text = b"the cat sat on the mat"
        tokens = model.tokenize(text)
        assert model.detokenize(tokens) == text
        with _lib.Context(model, n_ctx=32, n_batch=8) as ctx:
            ctx.decode(tokens)
            assert ctx.n_outputs() == 1
            assert len(ctx.logits()) == model.n_vocab
            with pytest.raises(_lib.NeoxError):
                ctx.decode(tokens * 3)  # more than n_ctx positions
        with pytest.raises(TypeError):
            _lib.Context(model, no_such_param=1)
