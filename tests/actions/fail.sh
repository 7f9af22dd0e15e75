#!/bin/sh
# Fails with exit code 3 and a secret on stderr (must not reach answers).
echo "secret-token-do-not-leak" >&2
exit 3
