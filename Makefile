# Convenience entry points; the build itself is CMake (CMakeLists.txt).
#   make run    install Debian packages, build, serve on 127.0.0.1:5000 (SQLite)
#   make test   install Debian packages, build, run every test:
#               bounded fuzzing, the suite under ASan+UBSan, then the suite
#               on the release build against SQLite and PostgreSQL (last, so
#               the output ends with ctest's summary)
BUILD ?= build
SANITIZE_BUILD ?= build-sanitize
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20

.PHONY: all deps build build-sanitize run test test-fuzz test-sanitize clean

all: build

deps:
	./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Sanitize >/dev/null
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/openexec serve

test-fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh scripts/fuzz-ci.sh

# The packaging test builds a .deb from its own release build, so it is left
# to the release pass.
test-sanitize: build-sanitize
	cd $(SANITIZE_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900 -E 'test_package'

test: build test-fuzz test-sanitize
	./scripts/test.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) build-fuzz-ci
