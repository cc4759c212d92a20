"""neox_cpp: GPT-NeoX-family models (GGUF) on a CPU, through llama-cpp-python 0.3.36's API.

``from neox_cpp import Llama`` gives llama-cpp-python's own ``Llama`` class running on libgptneox (a
private copy of llama-cpp-python's Python package, see ``neox_cpp._peer``); a plain ``import llama_cpp``
elsewhere in the process is left untouched, unless ``neox_cpp.patch()`` is called (``unpatch()`` undoes
it). The low-level layers are ``neox_cpp.llama_compat``
(llama-cpp-python's ``llama_cpp.llama_cpp`` namespace) and ``neox_cpp._lib`` (ctypes bindings of
include/gptneox.h). Nothing is loaded until first use.
"""

from __future__ import annotations

from typing import Any, List

__version__ = "0.1.0"

# Names served from the private llama-cpp-python package (all of llama_cpp's own public names work too).
_PEER_NAMES = (
    "Llama",
    "LlamaGrammar",
    "LlamaCache",
    "LlamaRAMCache",
    "LlamaDiskCache",
    "LlamaState",
    "LlamaTokenizer",
    "StoppingCriteriaList",
    "LogitsProcessorList",
)

__all__ = ["__version__", "llama_cpp", "patch", "unpatch", *_PEER_NAMES]


def llama_cpp() -> Any:
    """The private llama_cpp package running on neox_cpp (llama_cpp.Llama, llama_cpp.llama_chat_format...)."""
    from neox_cpp import _peer

    pkg = _peer.load()
    from neox_cpp import llama  # noqa: F401  (installs neox_cpp.llama.Llama and the chat formats)

    return pkg


def patch() -> None:
    """Make ``import llama_cpp`` / ``from llama_cpp import Llama`` run on neox_cpp in this process (before
    or after llama_cpp was imported; objects already taken from a real llama_cpp are not replaced)."""
    from neox_cpp import _peer

    llama_cpp()
    _peer.patch()


def unpatch() -> None:
    """Undo :func:`patch`."""
    from neox_cpp import _peer

    _peer.unpatch()


def __getattr__(name: str) -> Any:
    if name in _PEER_NAMES:
        return getattr(llama_cpp(), name)
    raise AttributeError(f"module 'neox_cpp' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_PEER_NAMES))
