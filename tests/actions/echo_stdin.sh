#!/bin/sh
# Succeeds with the payload it read on stdin, and counts its runs when
# COUNTER_FILE is set (exactly-once checks); sleeps SLEEP seconds first
# when that is set.
input=$(cat)
if [ -n "${COUNTER_FILE:-}" ]; then echo run >> "$COUNTER_FILE"; fi
if [ -n "${SLEEP:-}" ]; then sleep "$SLEEP"; fi
printf '{"got":%s}\n' "$input"
