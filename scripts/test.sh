#!/usr/bin/env bash
# The test command (README; .ci/run calls it): installs what the tests need, builds the engine and the
# llama.cpp peer (once, cached), then runs the C++ unit tests and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
bash .ci/build-peer.sh
make -j2 ctest
python -m pytest -q "$@"
