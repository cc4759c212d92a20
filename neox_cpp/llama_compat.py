"""llama-cpp-python 0.3.36's ``llama_cpp.llama_cpp`` namespace, served by libgptneox.

Every public name of that module exists here with the same kind and arity: constants, ctypes type
aliases, ``CFUNCTYPE`` types and ``Structure``/``Union`` classes with the same layouts (generated into
``_compat_types.py``), and every function: the ones our engine backs are defined in ``_compat_model.py`` and
``_compat_context.py`` and map ``llama_X`` to ``gptneox_X`` (``BACKED``); the others (``_compat_stubs.py``,
``NOT_IMPLEMENTED``) raise ``NotImplementedError("<name> is not implemented by neox_cpp yet")``.

``neox_cpp._peer`` loads llama-cpp-python's own high-level modules with this module standing in for
``llama_cpp.llama_cpp``. Importing this module calls nothing in the library except ``gptneox_log_set``
(through llama-cpp-python's logger, later) and the struct-size check of ``neox_cpp._lib``.
"""

from __future__ import annotations

import ctypes  # noqa: F401  (llama-cpp-python reads llama_cpp.llama_cpp.ctypes)
import os  # noqa: F401  (re-exported by llama_cpp.llama_cpp too)
import pathlib  # noqa: F401
import warnings  # noqa: F401
from types import ModuleType
from typing import Dict, List

from neox_cpp import _compat_context, _compat_model, _compat_sampling, _compat_stubs, _compat_types

byref = ctypes.byref


def _public(module: ModuleType) -> Dict[str, object]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "annotations"}


def _backed_functions() -> Dict[str, object]:
    out: Dict[str, object] = {}
    for module in (_compat_model, _compat_context, _compat_sampling):
        for name, value in vars(module).items():
            if (
                name.startswith("llama_")
                and callable(value)
                and getattr(value, "__module__", "") == module.__name__
            ):
                out[name] = value
    return out


_types = _public(_compat_types)
_stubs = {k: v for k, v in _public(_compat_stubs).items() if k.startswith("llama_") or k == "ctypes_function"}
_backed = _backed_functions()

globals().update(_types)
globals().update(_stubs)
globals().update(_backed)

LLAMA_MAX_DEVICES = _compat_model.llama_max_devices()

#: Names of llama_cpp.llama_cpp's functions that run on our engine.
BACKED: List[str] = sorted(_backed)
#: Names of llama_cpp.llama_cpp's functions that raise NotImplementedError for now.
NOT_IMPLEMENTED: List[str] = sorted(name for name in _stubs if name not in _backed)
