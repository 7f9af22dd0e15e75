#!/bin/sh
# Runs for SLEEP seconds (default 30), then succeeds; counts its runs.
if [ -n "${COUNTER_FILE:-}" ]; then echo run >> "$COUNTER_FILE"; fi
sleep "${SLEEP:-30}"
echo '{"slept":true}'
