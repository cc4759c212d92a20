#!/usr/bin/env bash
# Build the llama.cpp peer used by the interop tests and the bench: llama-cpp-python 0.3.36 compiled in
# full (with its native libllama.so), once, into a wheel folder that is reused, and installed into a venv
# of its own so that it never shadows the Python-only llama-cpp-python that neox_cpp runs on.
#
#   .ci/build-peer.sh            # idempotent: does nothing if the peer venv already works
#
# Layout (NEOX_PEER_DIR, default ~/.cache/neox_cpp/peer):
#   wheels/   llama_cpp_python-0.3.36-*.whl, built with --no-cache-dir (pip's wheel cache ignores
#             CMAKE_ARGS and may hand back a "light" wheel built without the native library)
#   src/      the unpacked sdist: vendor/llama.cpp/convert_hf_to_gguf.py and its gguf-py, which the wheel
#             does not ship (tests/test_interop.py runs llama.cpp's own converter from here)
#   venv/     python venv with numpy + the wheel, and what llama.cpp's converter needs
#             (requirements-convert_hf_to_gguf.txt, with torch pinned to our 2.13.0 and the CPU wheel
#             preferred; transformers 4.57.6 as llama.cpp pins it: under transformers 5 its GPT-NeoX
#             converter fails with KeyError 'rotary_pct'). NEOX_PEER_NO_CONVERT=1 skips them.
#
# Build flags: no -march=native (GGML_NATIVE=OFF) and no AVX-512/AMX: the default native build of 0.3.36
# segfaults in ggml_backend_amx_mul_mat on AMX Xeons for q4_0/q8_0 batches (see
# ../shared/reference/llama-cpp-python.md), and an AVX2 build runs on every CPU we meet.
set -euo pipefail

VERSION=0.3.36
PEER_DIR=${NEOX_PEER_DIR:-$HOME/.cache/neox_cpp/peer}
WHEELS=$PEER_DIR/wheels
SRC=$PEER_DIR/src
VENV=$PEER_DIR/venv
PYTHON=${PYTHON:-python3}
export CMAKE_ARGS=${NEOX_PEER_CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

t0=$(date +%s)
say() { printf '[build-peer %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

# Imports llama_cpp in the venv and checks that its native library is really there and loaded.
peer_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
import os, llama_cpp
lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libllama.so")
assert os.path.exists(lib), lib
assert llama_cpp.__version__ == "0.3.36", llama_cpp.__version__
assert llama_cpp.llama_print_system_info()
EOF
}

convert_ok() {
    [ "${NEOX_PEER_NO_CONVERT:-0}" = 1 ] && return 0
    "$VENV/bin/python" -c 'import torch, transformers, sentencepiece, safetensors, google.protobuf, yaml, tqdm
assert transformers.__version__ == "4.57.6", transformers.__version__' >/dev/null 2>&1
}

src_ok() { [ -f "$SRC/vendor/llama.cpp/convert_hf_to_gguf.py" ] && [ -d "$SRC/vendor/llama.cpp/gguf-py/gguf" ]; }

if peer_ok && src_ok && convert_ok; then
    say "peer already built: $VENV ($("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__file__)'))"
    exit 0
fi
mkdir -p "$WHEELS" "$SRC"

# 1. The sdist (one download, used for the wheel build and for llama.cpp's converter).
sdist=$(ls "$PEER_DIR"/llama_cpp_python-$VERSION.tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
    say "downloading the llama-cpp-python $VERSION sdist"
    # (--no-binary for this package only: with :all:, pip builds the sdist's build dependencies from
    # source too, to read its metadata -- cmake among them, 20+ minutes on 2 cores)
    "$PYTHON" -m pip download --no-cache-dir --no-deps --no-binary llama-cpp-python -d "$PEER_DIR" \
        "llama-cpp-python==$VERSION"
    sdist=$PEER_DIR/llama_cpp_python-$VERSION.tar.gz
fi
if ! src_ok; then
    say "unpacking $sdist"
    tar -xzf "$sdist" -C "$SRC" --strip-components=1
fi

# 2. The full wheel, built once. A wheel without lib/libllama.so is a light build: rebuild it.
wheel_has_lib() { "$PYTHON" -c 'import sys, zipfile; n = zipfile.ZipFile(sys.argv[1]).namelist();
sys.exit(0 if any(p.endswith("lib/libllama.so") for p in n) else 1)' "$1"; }
wheel=$(ls "$WHEELS"/llama_cpp_python-$VERSION-*.whl 2>/dev/null | head -n1 || true)
if [ -n "$wheel" ] && ! wheel_has_lib "$wheel"; then
    say "discarding $wheel: it has no native lib/libllama.so"
    rm -f "$wheel"
    wheel=
fi
if [ -z "$wheel" ]; then
    say "building the wheel (CMAKE_ARGS=$CMAKE_ARGS, CMAKE_BUILD_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL)"
    tb=$(date +%s)
    "$PYTHON" -m pip wheel --no-cache-dir --no-deps -w "$WHEELS" "$sdist"
    say "wheel built in $(( $(date +%s) - tb ))s"
    wheel=$(ls "$WHEELS"/llama_cpp_python-$VERSION-*.whl | head -n1)
    wheel_has_lib "$wheel" || { echo "error: $wheel has no lib/libllama.so" >&2; exit 1; }
fi

# 3. The venv: pure deps from PyPI, then the wheel itself with --no-deps.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q numpy typing-extensions diskcache jinja2
if ! peer_ok; then
    "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$wheel"
fi
if ! convert_ok; then
    say "installing llama.cpp's converter dependencies into $VENV"
    # torch pinned to 2.13.0; the CPU build if a wheel of it is reachable (find-links), else PyPI's.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0+cpu" 2>/dev/null ||
        "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q "transformers==4.57.6" "sentencepiece>=0.1.98,<0.3.0" safetensors \
        "protobuf>=4.21.0,<5.0.0" tqdm pyyaml requests
    convert_ok || { echo "error: llama.cpp's converter dependencies do not import in $VENV" >&2; exit 1; }
fi

if ! peer_ok; then
    echo "error: llama_cpp does not import with its native library in $VENV" >&2
    "$VENV/bin/python" -c 'import llama_cpp' || true
    exit 1
fi
say "peer ready: $VENV"
"$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())'
say "total $(( $(date +%s) - t0 ))s"
