"""llama-cpp-python's OpenAI-compatible server on neox_cpp: ``python -m neox_cpp.server --model X.gguf``.

This runs llama-cpp-python 0.3.36's own server (``llama_cpp.server``: FastAPI + uvicorn, routes
/v1/completions, /v1/chat/completions, /v1/embeddings, /v1/models, /extras/...) from the private copy of
llama-cpp-python that neox_cpp runs on, so its ``llama_cpp.Llama`` is :class:`neox_cpp.Llama`. Every
option of ``python -m llama_cpp.server`` is accepted (``--help`` lists them; ``--config_file``,
environment variables such as ``MODEL``, ``HOST``, ``PORT`` work the same), plus one of ours:

    --pooling {none,mean,last}       pooling of /v1/embeddings (llama-cpp-python's server has no such
                                     option; default: the model's, i.e. none for GPT-NeoX: one vector
                                     per token, as llama.cpp gives)

Needs llama-cpp-python's ``[server]`` extra: ``pip install 'uvicorn>=0.22.0' 'fastapi>=0.100.0'
'pydantic-settings>=2.0.1' 'sse-starlette>=1.6.1' 'starlette-context>=0.3.6,<0.4' 'PyYAML>=5.1'``.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any, List, Optional, Tuple

POOLING = {"none": 0, "mean": 1, "last": 3}
PROG = "python -m neox_cpp.server"


class _Lock:
    """An asyncio mutex (created in the running loop on first use) with anyio.Lock's methods used by the
    server, but no owner check: with current FastAPI/anyio the server's request dependency releases its
    locks from another task, and anyio.Lock then fails every request with "The current task is not
    holding this lock" (abetlen/llama-cpp-python#1861)."""

    def __init__(self) -> None:
        self._lock: Optional[asyncio.Lock] = None

    def _get(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def acquire(self) -> None:
        await self._get().acquire()

    def release(self) -> None:
        self._get().release()

    def locked(self) -> bool:
        return self._lock is not None and self._lock.locked()


def _fix_locks(app_module: types.ModuleType) -> None:
    for name in ("llama_outer_lock", "llama_inner_lock"):
        if not isinstance(getattr(app_module, name, None), _Lock):
            setattr(app_module, name, _Lock())


def _server_module(name: str) -> types.ModuleType:
    import neox_cpp
    from neox_cpp import _peer

    neox_cpp.llama_cpp()  # installs neox_cpp.Llama as the private llama_cpp.Llama
    try:
        module = _peer.import_module(name)
        _fix_locks(_peer.import_module("llama_cpp.server.app"))
        # The server's pydantic/FastAPI models resolve their annotations lazily through
        # sys.modules["llama_cpp.server.types"] etc., so the process runs patched (``import llama_cpp``
        # gives the private copy; neox_cpp.unpatch() undoes it). Re-patching puts the server modules
        # just imported into sys.modules too.
        neox_cpp.unpatch()
        neox_cpp.patch()
        return module
    except ImportError as e:
        raise ImportError(
            f"{e}. The server needs llama-cpp-python's [server] extra: pip install 'uvicorn>=0.22.0' "
            "'fastapi>=0.100.0' 'pydantic-settings>=2.0.1' 'sse-starlette>=1.6.1' "
            "'starlette-context>=0.3.6,<0.4' 'PyYAML>=5.1'"
        ) from e


def _set_pooling(pooling: int) -> None:
    """Make the server's Llama default to this pooling type (it passes no pooling_type itself)."""
    import neox_cpp
    from neox_cpp import llama as neox_llama

    pkg = neox_cpp.llama_cpp()

    class Llama(neox_llama.Llama):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("pooling_type", pooling)
            super().__init__(*args, **kwargs)

    Llama.__qualname__ = Llama.__name__ = "Llama"
    pkg.Llama = Llama


def _take_pooling(argv: List[str]) -> Tuple[Optional[int], List[str]]:
    rest: List[str] = []
    pooling: Optional[int] = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        value: Optional[str] = None
        if arg == "--pooling":
            if i + 1 >= len(argv):
                raise SystemExit(f"{PROG}: error: --pooling needs a value ({', '.join(POOLING)})")
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--pooling="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            rest.append(arg)
            i += 1
            continue
        if value not in POOLING:
            raise SystemExit(f"{PROG}: error: --pooling must be one of {', '.join(POOLING)}, not {value!r}")
        pooling = POOLING[value]
    return pooling, rest


def create_app(**kwargs: Any) -> Any:
    """llama-cpp-python's ``create_app(server_settings=..., model_settings=[...])`` on neox_cpp. Calls
    :func:`neox_cpp.patch` (the app's request models are resolved through ``llama_cpp.*`` names)."""
    return _server_module("llama_cpp.server.app").create_app(**kwargs)


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pooling, args = _take_pooling(args)
    server_main = _server_module("llama_cpp.server.__main__")
    if pooling is not None:
        _set_pooling(pooling)
    saved = sys.argv
    sys.argv = [PROG, *args]
    try:
        server_main.main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
