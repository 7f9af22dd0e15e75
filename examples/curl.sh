#!/bin/sh
# curl.sh - OpenExec from the shell, with nothing but curl and sed.
#
# Runs one action exactly once, the way a careful client should:
#   1. a fresh nonce for the logical request;
#   2. POST /execute with curl's own retries: on a timeout, a refused,
#      dropped or reset connection, or a transient HTTP status (503; curl
#      also counts 408, 429, 500, 502 and 504) curl sends the SAME request
#      again (same nonce), with exponential backoff, honouring Retry-After,
#      at most ATTEMPTS times in all.  The server runs a nonce at most once,
#      so a retry can never run the action twice: at worst it gets the first
#      answer back.  (Without --fail a 4xx is an answer, not an error, so
#      --retry-all-errors does not retry it; curl does not retry 409
#      request_in_progress, a client in a hurry may.)
#   3. the same request once more on purpose: the stored answer, byte for
#      byte, with Idempotent-Replayed: true;
#   4. the signed receipt (GET /receipts/ID) checked by POST /receipts/verify,
#      and offline by `openexec verify-receipt` with the log's public key
#      when the openexec binary is at hand (OPENEXEC_BIN or PATH).
#
# Usage: curl.sh [ACTION [PAYLOAD_JSON]]          (default: echo '{"hello":"world"}')
# Environment: OPENEXEC_URL (default http://127.0.0.1:5000), OPENEXEC_TIMEOUT
# (seconds per attempt, default 10), OPENEXEC_ATTEMPTS (default 5), NONCE.
# Exit status: 0 executed and verified, 1 refused or not verified, 2 usage.
set -eu

URL=${OPENEXEC_URL:-http://127.0.0.1:5000}
URL=${URL%/}
TIMEOUT=${OPENEXEC_TIMEOUT:-10}
ATTEMPTS=${OPENEXEC_ATTEMPTS:-5}
ACTION=${1:-echo}
PAYLOAD=${2:-'{"hello":"world"}'}
[ $# -le 2 ] || { echo "usage: curl.sh [ACTION [PAYLOAD_JSON]]" >&2; exit 2; }
case $ACTION in *[!A-Za-z0-9._:-]*|'') echo "curl.sh: ACTION must be a plain name" >&2; exit 2;; esac

# A uuid4-like nonce from the kernel, else 16 random bytes in hex.
NONCE=${NONCE:-$(cat /proc/sys/kernel/random/uuid 2>/dev/null ||
                 od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
BODY=$(printf '{"action":"%s","payload":%s,"nonce":"%s"}' "$ACTION" "$PAYLOAD" "$NONCE")
echo "nonce: $NONCE"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# One POST /execute with bounded retries of the identical body.  Writes the
# body to $1.body and the headers to $1.hdr; prints the final HTTP status.
execute() {
    curl -sS -o "$1.body" -D "$1.hdr" -w '%{http_code}' \
         --max-time "$TIMEOUT" --retry $((ATTEMPTS - 1)) --retry-all-errors \
         --retry-connrefused --retry-max-time 120 \
         -H 'Content-Type: application/json' --data-binary "$BODY" "$URL/execute"
}

# curl fails when the last attempt found no server or no answer; a 503 after
# the last attempt means nothing was attempted either.
status=$(execute "$tmp/first") || status=none
if [ "$status" = none ] || [ "$status" = 503 ]; then
    echo "no final answer after $ATTEMPTS attempts; it is safe to retry later with nonce $NONCE" >&2
    exit 1
fi
if [ "$status" != 200 ]; then
    echo "refused: HTTP $status $(cat "$tmp/first.body")"
    exit 1
fi
# Keys come in the documented order, so the id is the first member.
ID=$(sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p' "$tmp/first.body")
[ -n "$ID" ] || { echo "no id in the answer" >&2; exit 1; }
echo "executed: id $ID"

# A deliberate retry: the stored answer, byte for byte.
status2=$(execute "$tmp/again") || status2=none
if [ "$status2" != "$status" ] || ! cmp -s "$tmp/first.body" "$tmp/again.body" ||
   ! grep -qi '^idempotent-replayed: true' "$tmp/again.hdr"; then
    echo "replay differs from the first answer"
    exit 1
fi
echo "replay: identical bytes ($(wc -c < "$tmp/again.body")), Idempotent-Replayed: true"

# The signed receipt of this execution, checked by the server.
curl -sS --fail --max-time "$TIMEOUT" -o "$tmp/receipt.json" "$URL/receipts/$ID"
printf '{"signed_receipt":%s}' "$(cat "$tmp/receipt.json")" > "$tmp/verify.json"
verdict=$(curl -sS --max-time "$TIMEOUT" -H 'Content-Type: application/json' \
               --data-binary @"$tmp/verify.json" "$URL/receipts/verify")
if [ "$verdict" != '{"valid":true}' ]; then
    echo "server says the signed receipt is NOT valid: $verdict"
    exit 1
fi
echo "server verify: signed receipt valid"

# Offline, with the log's public key (in production: pin the key instead of
# fetching it from the server being checked).
OPENEXEC=${OPENEXEC_BIN:-$(command -v openexec || true)}
if [ -n "$OPENEXEC" ]; then
    curl -sS --fail --max-time "$TIMEOUT" "$URL/receipts/key" |
        sed -n 's/.*"public_key_pem":"\([^"]*\)".*/\1/p' > "$tmp/pem.escaped"
    printf '%b' "$(cat "$tmp/pem.escaped")" > "$tmp/log.pub"
    if ! "$OPENEXEC" verify-receipt --key "$tmp/log.pub" "$tmp/first.body" > "$tmp/offline.out" 2>&1; then
        echo "offline verification FAILED: $(cat "$tmp/offline.out")"
        exit 1
    fi
    echo "offline verify: $(cat "$tmp/offline.out")"
else
    echo "offline verify: skipped (no openexec binary; set OPENEXEC_BIN)"
fi
