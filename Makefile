# The two commands (see README.md):
#   make run    install what is missing, build, start `mare run` fed by `mare simulate`
#   make test   install what is missing, build (normal and ASan+UBSan), run every test
BUILD ?= build
ASAN_BUILD ?= build-asan
MARE := $(BUILD)/bin/mare

.PHONY: all setup build build-asan test run bench clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build $(BUILD)

# Sanitizer build: AddressSanitizer + UndefinedBehaviorSanitizer (at -O1, see CMakeLists.txt).
build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMARE_SANITIZE=ON > /dev/null
	@cmake --build $(ASAN_BUILD)

test: build build-asan
	ctest --test-dir $(BUILD) --output-on-failure
	ctest --test-dir $(ASAN_BUILD) --output-on-failure

run: build
	@scripts/run-demo.sh $(MARE)

bench: build
	@scripts/setup-bench.sh
	@bench/parse.py $(BUILD)
	@bench/udp.py $(BUILD)
	@bench/rollup.py $(BUILD)
	@bench/freshness.py $(BUILD)
	@bench/store.py --build $(BUILD)/bin
	@bench/kafka.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
