"""neox_cpp.llama_compat serves every public name of llama-cpp-python 0.3.36's llama_cpp.llama_cpp.

The specification is the installed llama_cpp/llama_cpp.py, read with ast (it is never imported: it needs
llama.cpp's native library).
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import typing
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from neox_cpp import _compat_gen, _peer, llama_compat

SPEC = _compat_gen.spec_path()
NAMES = _compat_gen.public_names(SPEC)
_CFuncPtr: type = ctypes._CFuncPtr  # type: ignore[attr-defined]


def _arity(fn: Any) -> Tuple[int, int]:
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return (sum(1 for p in params if p.default is p.empty), len(params))


def test_spec_has_the_documented_number_of_public_names() -> None:
    # ../shared/reference/llama-cpp-python.md: 534 public names, 256 functions (218 + 38 wrappers).
    assert len(NAMES) == 534
    assert sum(1 for kind, _ in NAMES.values() if kind == "function") == 256


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_public_name_exists_with_the_same_kind_and_arity(name: str) -> None:
    kind, arity = NAMES[name]
    assert hasattr(llama_compat, name), f"llama_compat lacks {name}"
    value = getattr(llama_compat, name)
    if kind == "function":
        assert callable(value) and not isinstance(value, type)
        assert _arity(value) == arity, name
    elif kind == "struct":
        assert isinstance(value, type) and issubclass(value, (ctypes.Structure, ctypes.Union))
    elif kind == "cfunctype":
        assert isinstance(value, type) and issubclass(value, _CFuncPtr)
        theirs = REFERENCE[name]
        assert len(value._argtypes_) == len(theirs._argtypes_)
        assert [ctypes.sizeof(t) for t in value._argtypes_] == [ctypes.sizeof(t) for t in theirs._argtypes_]


def test_ctypes_module_attribute() -> None:
    assert llama_compat.ctypes is ctypes  # Llama.save_state calls llama_cpp.ctypes.memmove


def test_backed_and_unimplemented_partition_the_functions() -> None:
    functions = {n for n, (k, _) in NAMES.items() if k == "function"}
    assert set(llama_compat.BACKED) | set(llama_compat.NOT_IMPLEMENTED) == functions
    assert not set(llama_compat.BACKED) & set(llama_compat.NOT_IMPLEMENTED)


@pytest.mark.parametrize("name", llama_compat.NOT_IMPLEMENTED)
def test_unimplemented_functions_raise_naming_themselves(name: str) -> None:
    fn = getattr(llama_compat, name)
    n_required = _arity(fn)[0]
    with pytest.raises(NotImplementedError, match=rf"^{name} is not implemented by neox_cpp yet$"):
        fn(*([None] * n_required))


def _reference_namespace() -> Dict[str, Any]:
    """Execute llama_cpp.py's type aliases, callback types and struct definitions (nothing else) in a
    fresh namespace, giving llama-cpp-python's own ctypes classes."""
    tree = ast.parse(SPEC.read_text(encoding="utf-8"))
    body: List[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            body.append(node)
        elif isinstance(node, ast.Assign):
            target = ast.unparse(node.targets[0])
            if target.endswith("._fields_") or (
                not target.startswith("_") and target not in ("LLAMA_MAX_DEVICES", "ctypes_function")
            ):
                body.append(node)
    module = ast.Module(body=body, type_ignores=[])
    ns: Dict[str, Any] = {"ctypes": ctypes, "TYPE_CHECKING": False, **vars(typing)}
    exec(compile(module, str(SPEC), "exec"), ns)
    return ns


REFERENCE = _reference_namespace()
STRUCTS = sorted(n for n, (k, _) in NAMES.items() if k == "struct")


def _layout(cls: type) -> List[Tuple[str, int, int]]:
    return [(f[0], getattr(cls, f[0]).offset, getattr(cls, f[0]).size) for f in cls._fields_]


@pytest.mark.parametrize("name", STRUCTS)
def test_struct_layouts_equal_llama_cpp_pythons(name: str) -> None:
    ours, theirs = getattr(llama_compat, name), REFERENCE[name]
    assert ctypes.sizeof(ours) == ctypes.sizeof(theirs)
    assert ctypes.alignment(ours) == ctypes.alignment(theirs)
    assert _layout(ours) == _layout(theirs)


def test_llama_batch_is_layout_identical_to_gptneox_batch() -> None:
    from neox_cpp import _lib

    assert _layout(llama_compat.llama_batch) == _layout(_lib.gptneox_batch)
    assert ctypes.sizeof(llama_compat.llama_batch) == ctypes.sizeof(_lib.gptneox_batch)
    assert _layout(llama_compat.llama_perf_context_data) == _layout(_lib.gptneox_perf_data)


def test_constants_equal_llama_cpp_pythons() -> None:
    for name, (kind, _) in NAMES.items():
        if kind == "value" and name in REFERENCE and isinstance(REFERENCE[name], int):
            assert getattr(llama_compat, name) == REFERENCE[name], name


def test_seeds_are_masked_not_rejected() -> None:
    # llama-cpp-python passes seeds up to 2**32 and -1 to uint32 parameters: ctypes truncates them.
    params = llama_compat.llama_model_default_params()
    assert params.n_gpu_layers == 0 and llama_compat.LLAMA_MAX_DEVICES >= 1
    assert llama_compat.llama_supports_gpu_offload() is False


def _lazy_llama_cpp_imports() -> List[str]:
    """Functions of the high-level modules that import llama_cpp.* at call time, as Class.method."""
    pkg = _peer.installed_package_dir()
    found: List[str] = []
    for path in sorted(pkg.glob("*.py")):
        if path.name in ("llama_cpp.py", "mtmd_cpp.py", "llava_cpp.py", "llama_cpp_ext.py", "_ggml.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = {id(f): c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body}
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                names: List[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                if any(n == "llama_cpp" or n.startswith("llama_cpp.") for n in names):
                    prefix = owner[id(fn)] + "." if id(fn) in owner else ""
                    found.append(f"{path.stem}:{prefix}{fn.name}")
    return sorted(set(found))


def test_lazy_imports_of_llama_cpp_are_all_handled() -> None:
    lazy = _lazy_llama_cpp_imports()
    handled = {f"llama_chat_format:{c}.__init__" for c in _peer._MULTIMODAL_HANDLERS}
    assert set(lazy) <= handled, (
        f"call-time `import llama_cpp...` not handled by _peer: {set(lazy) - handled}"
    )


@pytest.mark.parametrize("cls_name", _peer._MULTIMODAL_HANDLERS)
def test_multimodal_handlers_refuse_clearly(cls_name: str) -> None:
    chat_format = _peer.import_module("llama_cpp.llama_chat_format")
    with pytest.raises(NotImplementedError, match=cls_name):
        getattr(chat_format, cls_name)(clip_model_path=str(Path("/nonexistent")))
