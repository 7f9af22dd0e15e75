#!/usr/bin/env python3
"""mint.py - pre-mint /execute bodies with single-use ClawShield approvals.

bench/run feeds these to wrk (bench/bodies.lua): one request body per line,
spread round-robin over SHARDS files (PREFIX.0, PREFIX.1, ...), one per wrk
thread, so every thread owns a disjoint slice and every artifact is used
exactly once per database.  Artifacts are minted the way ClawShield mints
them, with the independent reference in tests/tools/clawshield.py
(action_hash, signed_message); only the private key is loaded once instead
of per artifact, so that minting tens of thousands takes seconds.

    mint.py keygen PREFIX
    mint.py bodies --key PRIV --tenant T --count N --shards K --out PREFIX
                   --run RUNID [--bad B] [--ttl S] [--workers W]

With --bad B, B more bodies go to PREFIX.bad.0, PREFIX.bad.1, ...: bodies
the server must deny (403), alternately a signature over other bytes
(invalid_signature, found by the verification itself) and a validly signed
artifact for another tenant (tenant_mismatch, found right after it).  The
mix scenario sends one of those instead of a good body every 20th request.
"""

import argparse
import base64
import datetime
import json
import multiprocessing
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))
import clawshield  # noqa: E402  (the reference approver)

from cryptography.hazmat.primitives import serialization  # noqa: E402

ACTION = "echo"
PAYLOAD = {"amount": 5}


def _bodies(args):
    """Worker: bodies for indices [lo, hi), as (index, line) pairs; bad
    bodies when `bad` is true."""
    key_pem, tenant, lo, hi, run, bad, ttl, shards = args
    key = serialization.load_pem_private_key(key_pem, password=None)
    act_hash = clawshield.action_hash(ACTION, PAYLOAD)
    out = []
    for i in range(lo, hi):
        # Stamped one by one, as an approver stamps each approval when it
        # grants it (clawshield.mint): a shared stamp would give every
        # artifact of a chunk the same expires_at, which no real stream has.
        now = clawshield.utcnow_naive()
        issued_at = now.isoformat()
        expires_at = (now + datetime.timedelta(seconds=ttl)).isoformat()
        other_tenant = bad and (i // shards) % 2 == 1  # both kinds per shard
        art_tenant = "not-" + tenant if other_tenant else tenant
        approval_id = str(uuid.uuid4())
        message = clawshield.signed_message(approval_id, art_tenant, act_hash,
                                            issued_at, expires_at)
        if bad and not other_tenant:
            message = b"not the approved bytes" + message
        art = {
            "approval_id": approval_id,
            "tenant_id": art_tenant,
            "action_hash": act_hash,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "signature": base64.b64encode(key.sign(message)).decode(),
        }
        nonce = "cs-%s-%s%d" % (run, "bad-" if bad else "", i)
        body = {"action": ACTION, "payload": PAYLOAD, "nonce": nonce,
                "approval_artifact": art}
        out.append((i, json.dumps(body, separators=(",", ":"))))
    return out


def cmd_keygen(a):
    priv, pub = clawshield.keygen()
    for path, data, mode in ((a.prefix + ".key", priv, 0o600),
                             (a.prefix + ".pub", pub, 0o644)):
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
        with os.fdopen(fd, "w") as f:
            f.write(data)
    return 0


def _write(pool, jobs, prefix, shards):
    files = [open("%s.%d" % (prefix, k), "w") for k in range(shards)]
    try:
        for part in pool.imap(_bodies, jobs):
            for i, line in part:
                files[i % shards].write(line + "\n")
    finally:
        for f in files:
            f.close()


def _jobs(key_pem, a, count, bad):
    chunk = max(500, count // (a.workers * 4) + 1)
    return [(key_pem, a.tenant, lo, min(lo + chunk, count), a.run, bad, a.ttl,
             a.shards)
            for lo in range(0, count, chunk)]


def cmd_bodies(a):
    with open(a.key, "rb") as f:
        key_pem = f.read()
    with multiprocessing.Pool(a.workers) as pool:
        _write(pool, _jobs(key_pem, a, a.count, False), a.out, a.shards)
        if a.bad > 0:
            _write(pool, _jobs(key_pem, a, a.bad, True), a.out + ".bad", a.shards)
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="mint.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("prefix")
    b = sub.add_parser("bodies")
    b.add_argument("--key", required=True)
    b.add_argument("--tenant", required=True)
    b.add_argument("--count", type=int, required=True)
    b.add_argument("--shards", type=int, required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--run", required=True)
    b.add_argument("--bad", type=int, default=0)
    b.add_argument("--ttl", type=float, default=3600)
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = p.parse_args(argv)
    return cmd_keygen(a) if a.cmd == "keygen" else cmd_bodies(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
