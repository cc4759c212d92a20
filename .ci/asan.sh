#!/usr/bin/env bash
# The engine under AddressSanitizer + UBSan: the C++ unit tests, and the Python tests that drive the
# engine without torch (torch's own libraries are not built for a preloaded ASan runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
make -j2 asan
make -j2 asan-ctest
export NEOX_CPP_LIB="$PWD/build/asan/libgptneox.so"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
python -m pytest -q -m "not torch" -p no:cacheprovider
