# Convenience entry points; the build itself is CMake (CMakeLists.txt).
#   make run    install Debian packages, build, serve on 127.0.0.1:5000 (SQLite)
#   make test   install Debian packages, build, run every test (ctest)
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build run test test-sanitize clean

all: build

deps:
	./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/openexec serve

test: build
	./scripts/test.sh $(BUILD)

test-sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Sanitize >/dev/null
	cmake --build build-sanitize -j $(JOBS)
	./scripts/test.sh build-sanitize

clean:
	rm -rf $(BUILD) build-sanitize
