#!/usr/bin/env bash
# Python dependencies of neox_cpp and its tests, then neox_cpp itself (editable: builds libgptneox.so).
set -euo pipefail
cd "$(dirname "$0")/.."
# torch pinned: the CPU build of 2.13.0 lies on disk; an unpinned torch pulls a CUDA build of several GB.
pip install -q "torch==2.13.0"
pip install -q transformers gguf safetensors sentencepiece tokenizers tqdm protobuf numpy \
    typing-extensions pytest ruff jinja2 diskcache
# The server (llama-cpp-python's [server] extra), its test client, and LangChain for the patch() tests.
pip install -q langchain-community==0.4.2 openai "uvicorn>=0.22.0" "fastapi>=0.100.0" \
    "pydantic-settings>=2.0.1" "sse-starlette>=1.6.1" "starlette-context>=0.3.6,<0.4" "PyYAML>=5.1"
# llama-cpp-python's Python part only (no native build). --no-cache-dir: pip's wheel cache ignores
# CMAKE_ARGS, so a cached light wheel could otherwise stand in for a full one elsewhere.
if ! python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('llama_cpp') else 1)"; then
    CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" pip install -q --no-cache-dir "llama-cpp-python==0.3.36"
fi
pip install -q --no-build-isolation --no-deps -e .
