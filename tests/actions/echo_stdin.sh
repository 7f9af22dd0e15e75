#!/bin/sh
# Succeeds with the payload it read on stdin, and counts its runs when
# COUNTER_FILE is set (exactly-once checks).
input=$(cat)
if [ -n "${COUNTER_FILE:-}" ]; then echo run >> "$COUNTER_FILE"; fi
printf '{"got":%s}\n' "$input"
