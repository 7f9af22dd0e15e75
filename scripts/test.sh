#!/bin/sh
# Runs every test of one build directory with ctest.
set -eu
build=${1:-build}
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 600
