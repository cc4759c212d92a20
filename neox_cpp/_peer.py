"""A private copy of llama-cpp-python's own Python package, running on neox_cpp.llama_compat.

llama-cpp-python's high-level modules (llama.py, _internals.py, _logger.py, llama_chat_format.py, ...)
import the low-level module by its absolute name (``import llama_cpp.llama_cpp as llama_cpp``). To run
them on our engine without touching what a plain ``import llama_cpp`` gives elsewhere in the process,
:func:`load` temporarily swaps the ``llama_cpp`` entries of ``sys.modules``:

1. the current ``llama_cpp`` / ``llama_cpp.*`` entries (if any) are set aside;
2. a fresh, empty package object named ``llama_cpp`` whose ``__path__`` is the installed package's
   directory is inserted, with :mod:`neox_cpp.llama_compat` as ``llama_cpp.llama_cpp``, and filled the
   way llama_cpp/__init__.py fills it (``from .llama_cpp import *``; ``from .llama import *``);
3. the high-level modules are imported from their installed files into it;
4. every ``llama_cpp*`` entry is removed again and the set-aside entries are restored exactly.

The fresh module objects stay reachable under private names (``neox_cpp._peer.llama_cpp...``) and
through the package object this returns. Module-level ``import llama_cpp...`` statements bind the private
objects into the modules' globals, so later calls stay in the private copy. The only imports done at
call time (``import llama_cpp.mtmd_cpp`` in the multimodal chat handlers' ``__init__``) are replaced by a
clear NotImplementedError. :func:`import_module` imports further submodules (``llama_cpp.server.app``)
into the same private copy.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

PKG = "llama_cpp"
PRIVATE_PREFIX = "neox_cpp._peer."
# What llama_cpp/__init__.py imports, in its order (llama_cpp.llama pulls in the rest).
_BASE_MODULES = ("llama_cpp.llama",)
# Classes of llama_chat_format whose __init__ imports llama_cpp.mtmd_cpp (native multimodal code).
_MULTIMODAL_HANDLERS = ("Llava15ChatHandler", "MTMDChatHandler")

_lock = threading.RLock()


class _State:
    modules: Optional[Dict[str, types.ModuleType]] = None  # private llama_cpp* modules by real name


def _is_pkg_name(name: str) -> bool:
    return name == PKG or name.startswith(PKG + ".")


def installed_package_dir() -> Path:
    """The installed llama_cpp package directory, found without importing it."""
    spec = importlib.machinery.PathFinder.find_spec(PKG)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("llama-cpp-python (the llama_cpp package) is not installed")
    return Path(list(spec.submodule_search_locations)[0])


@contextmanager
def _swapped(private: Dict[str, types.ModuleType]) -> Iterator[None]:
    """Within the block, sys.modules' llama_cpp* entries are ``private`` (which collects any new ones);
    afterwards they are exactly what they were before."""
    saved = {k: v for k, v in sys.modules.items() if _is_pkg_name(k)}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(private)
    try:
        yield
    finally:
        for k in [k for k in sys.modules if _is_pkg_name(k)]:
            private[k] = sys.modules.pop(k)
        sys.modules.update(saved)


def _new_package() -> types.ModuleType:
    from neox_cpp import llama_compat

    pkg_dir = installed_package_dir()
    pkg = types.ModuleType(PKG, "llama-cpp-python 0.3.36 on neox_cpp (private copy)")
    pkg.__path__ = [str(pkg_dir)]
    pkg.__file__ = str(pkg_dir / "__init__.py")
    pkg.__package__ = PKG
    pkg.__spec__ = importlib.machinery.ModuleSpec(PKG, None, is_package=True)
    pkg.__spec__.submodule_search_locations = [str(pkg_dir)]
    # from .llama_cpp import *
    for name, value in vars(llama_compat).items():
        if not name.startswith("_"):
            setattr(pkg, name, value)
    pkg.llama_cpp = llama_compat  # type: ignore[attr-defined]
    return pkg


def _refuse_multimodal(chat_format: types.ModuleType) -> None:
    for cls_name in _MULTIMODAL_HANDLERS:
        cls = getattr(chat_format, cls_name, None)
        if cls is None:
            continue

        def __init__(self: Any, *args: Any, _name: str = cls_name, **kwargs: Any) -> None:
            raise NotImplementedError(f"{_name} (multimodal chat) is not implemented by neox_cpp yet")

        cls.__init__ = __init__


def load() -> types.ModuleType:
    """The private llama_cpp package (built on first use; thread-safe)."""
    with _lock:
        if _State.modules is None:
            from neox_cpp import llama_compat

            private: Dict[str, types.ModuleType] = {PKG: _new_package(), PKG + ".llama_cpp": llama_compat}
            with _swapped(private):
                pkg = sys.modules[PKG]
                for name in _BASE_MODULES:
                    module = importlib.import_module(name)
                    for attr, value in vars(module).items():  # from .llama import *
                        if not attr.startswith("_"):
                            setattr(pkg, attr, value)
                pkg.__version__ = "0.3.36"  # type: ignore[attr-defined]
            _refuse_multimodal(private[PKG + ".llama_chat_format"])
            for name, module in private.items():
                if name != PKG + ".llama_cpp":
                    sys.modules[PRIVATE_PREFIX + name] = module
            _State.modules = private
        return _State.modules[PKG]


def import_module(name: str) -> types.ModuleType:
    """Import ``llama_cpp.<...>`` (e.g. ``llama_cpp.server.app``) into the private copy."""
    if not _is_pkg_name(name):
        raise ValueError(f"{name!r} is not a llama_cpp module")
    load()
    with _lock:
        private = _State.modules
        assert private is not None
        if name not in private:
            with _swapped(private):
                importlib.import_module(name)
            for k, module in private.items():
                if k != PKG + ".llama_cpp":
                    sys.modules.setdefault(PRIVATE_PREFIX + k, module)
        return private[name]


def private_modules() -> List[str]:
    """Names (as llama_cpp sees them) of the modules of the private copy loaded so far."""
    return sorted(_State.modules or {})


class _Patch:
    saved: Optional[Dict[str, types.ModuleType]] = None  # llama_cpp* entries set aside by patch()


def patch() -> None:
    """Make ``import llama_cpp`` (and ``from llama_cpp import Llama``) give the private copy running on
    neox_cpp, process-wide, until :func:`unpatch`. Idempotent. Objects that code already took from a
    real llama_cpp imported earlier are not replaced."""
    load()
    with _lock:
        if _Patch.saved is not None:
            return
        private = _State.modules
        assert private is not None
        _Patch.saved = {k: v for k, v in sys.modules.items() if _is_pkg_name(k)}
        for k in _Patch.saved:
            del sys.modules[k]
        sys.modules.update(private)


def unpatch() -> None:
    """Undo :func:`patch`: sys.modules' llama_cpp entries are again what they were before it. Modules
    of llama_cpp imported while patched stay in the private copy."""
    with _lock:
        if _Patch.saved is None:
            return
        private = _State.modules
        assert private is not None
        for k in [k for k in sys.modules if _is_pkg_name(k)]:
            module = sys.modules.pop(k)
            private.setdefault(k, module)
            if k != PKG + ".llama_cpp":
                sys.modules.setdefault(PRIVATE_PREFIX + k, module)
        sys.modules.update(_Patch.saved)
        _Patch.saved = None


def is_patched() -> bool:
    return _Patch.saved is not None
