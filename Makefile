# The two commands (see README.md):
#   make run    install what is missing, build, start `mare run` fed by `mare simulate`
#   make test   install what is missing, build (normal and ASan+UBSan), run every test
#   make fuzz   build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (bench/fuzz.py)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
MARE := $(BUILD)/bin/mare

.PHONY: all setup build build-asan build-fuzz test fuzz run bench clean

all: build

# MARE_SETUP_DONE=1: a caller that has run it (make test's own sub-make) skips the second run.
setup:
	@$(if $(MARE_SETUP_DONE),true,scripts/setup.sh)

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build $(BUILD)

# Sanitizer build: AddressSanitizer + UndefinedBehaviorSanitizer (at -O1, see CMakeLists.txt).
build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMARE_SANITIZE=ON > /dev/null
	@cmake --build $(ASAN_BUILD)

# Fuzz build: clang's libFuzzer + ASan + UBSan, the libraries and fuzz/'s targets only (fuzz/CMakeLists.txt).
build-fuzz: setup
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMARE_FUZZ=ON > /dev/null
	@cmake --build $(FUZZ_BUILD) --target fuzz_targets

# The three builds' tests in one ctest, three at a time: most e2e tests wait on servers and
# clocks (rollups_compaction: 6 s of CPU in 86 s; kafka_roles 34 in 162), so two at a time left the
# cores idle much of the run. One ctest and not three, so that the other builds' tests fill the
# slots the JVM tests' locks leave (tests/CMakeLists.txt). The sanitizer build's tests end in
# _asan; the fuzz build's run each target for 30 s (fuzz_*). $(TESTS)/CTestTestfile.cmake only
# lists the three.
TESTS ?= build-tests
# The test servers' jars (tests/e2e/fetch_jars.py) download while the three builds compile.
test: setup
	@mkdir -p $(TESTS)
	@python3 tests/e2e/fetch_jars.py > $(TESTS)/fetch-jars.log 2>&1 & jars=$$!; \
	  $(MAKE) --no-print-directory build build-asan build-fuzz MARE_SETUP_DONE=1; built=$$?; \
	  [ $$built -eq 0 ] || kill $$jars 2>/dev/null; \
	  wait $$jars || [ $$built -ne 0 ] || { echo "make test: fetching the jars ahead failed (each test fetches its own):"; cat $(TESTS)/fetch-jars.log; }; \
	  exit $$built
	@printf 'subdirs("%s")\n' $(abspath $(BUILD)) $(abspath $(ASAN_BUILD)) $(abspath $(FUZZ_BUILD)) > $(TESTS)/CTestTestfile.cmake
	ctest --test-dir $(TESTS) --output-on-failure -j3

# Every fuzz target for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=3600), then a table.
fuzz: build-fuzz
	@bench/fuzz.py --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS)

run: build
	@scripts/run-demo.sh $(MARE)

bench: build
	@scripts/setup-bench.sh
	@bench/parse.py $(BUILD)
	@bench/udp.py $(BUILD)
	@bench/ingest.py $(BUILD)
	@bench/rollup.py $(BUILD)
	@bench/freshness.py $(BUILD)
	@bench/store.py --build $(BUILD)/bin
	@bench/notebook.py --build $(BUILD)/bin
	@bench/kafka.py --build $(BUILD)
	@bench/forecast.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TESTS)
