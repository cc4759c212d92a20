# libgptneox.so: the native engine. Built with the system g++ only; no third-party native code.
# SIMD kernels live in files named *-avx2.cpp / *-avx512.cpp / *-amx.cpp, compiled with that ISA's flags and called
# only after run-time CPU detection says the CPU has it (no -march=native: the same .so runs on any x86-64).

CXX      ?= g++
OPT      ?= -O2
CXXFLAGS ?=
CXXFLAGS += $(OPT) -g -std=c++17 -fPIC -fvisibility=hidden -fno-math-errno -pthread \
            -Wall -Wextra -Wshadow -Iinclude -Isrc
LDFLAGS  += -pthread

AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni

BUILD    ?= build/release
SRCS     := $(shell find src -name '*.cpp' ! -name '*_test.cpp' | sort)
OBJS     := $(SRCS:%.cpp=$(BUILD)/%.o)
HDRS     := $(shell find src include -name '*.h')
CTESTS   := $(shell find src tests/c -name '*_test.cpp' 2>/dev/null | sort)

.PHONY: all lib asan asan-ctest ctest clean
all: libgptneox.so

lib: libgptneox.so

# Also copied into the package, where neox_cpp/_lib.py looks first (an editable install then always
# sees the library `make` just built).
libgptneox.so: $(OBJS) src/api/exports.map
	$(CXX) -shared -o $@ $(OBJS) $(LDFLAGS) -Wl,--version-script=src/api/exports.map
	cp -f $@ neox_cpp/libgptneox.so

$(BUILD)/%-avx2.o: %-avx2.cpp $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(AVX2_FLAGS) -c $< -o $@

$(BUILD)/%-avx512.o: %-avx512.cpp $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(AVX512_FLAGS) -c $< -o $@

$(BUILD)/%-amx.o: %-amx.cpp $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(AVX512_FLAGS) -mamx-tile -mamx-int8 -mamx-bf16 -c $< -o $@

$(BUILD)/%.o: %.cpp $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# Sanitizer build: build/asan/libgptneox.so (AddressSanitizer + UBSan); `make asan-ctest` runs the C++
# unit tests with it; .ci/asan.sh also runs the Python tests against it.
# -Wno-maybe-uninitialized: at -O1 with the sanitizers GCC 12 reports std::function members inside
# libstdc++'s <regex> (bpe.cpp, grammar.cpp) as maybe uninitialized -- in the system header, not our code;
# the -O2 build (no such warning) keeps the check for our code.
SAN_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
           -Wno-maybe-uninitialized
asan:
	$(MAKE) BUILD=build/asan OPT="$(SAN_OPT)" LDFLAGS="-pthread -fsanitize=address,undefined" build/asan/libgptneox.so

asan-ctest:
	$(MAKE) BUILD=build/asan OPT="$(SAN_OPT)" LDFLAGS="-pthread -fsanitize=address,undefined" ctest

# Any build directory's own copy (build/asan/libgptneox.so for `make asan`; `make BUILD=build/x
# build/x/libgptneox.so` gives a private build that NEOX_CPP_LIB can point at).
$(BUILD)/libgptneox.so: $(OBJS) src/api/exports.map
	$(CXX) -shared -o $@ $(OBJS) $(LDFLAGS) -Wl,--version-script=src/api/exports.map

# C++ unit tests (kernels against their scalar references, GGUF reader on corrupt input, ...): each
# *_test.cpp is linked with the engine's objects into its own binary and run.
CTEST_BINS := $(CTESTS:%.cpp=$(BUILD)/%)
$(BUILD)/%_test: %_test.cpp $(OBJS) $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -o $@ $< $(OBJS) $(LDFLAGS)

ctest: $(CTEST_BINS)
	@set -e; for t in $(CTEST_BINS); do echo "== $$t"; $$t; done

clean:
	rm -rf build libgptneox.so neox_cpp/libgptneox.so
