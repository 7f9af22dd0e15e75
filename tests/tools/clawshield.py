#!/usr/bin/env python3
"""clawshield.py - mint approval artifacts exactly the way ClawShield does.

This is the independent reference our C code is tested against (SPEC 3.3 and
4), written the way the original Python approver writes it, with nothing but
the standard library and python3-cryptography:

    action_hash = sha256(json.dumps({"action": a, "payload": p},
                                    sort_keys=True,
                                    separators=(",", ":")).encode()).hexdigest()
    message     = (approval_id + tenant_id + action_hash
                   + issued_at + expires_at).encode()
    signature   = base64.b64encode(Ed25519PrivateKey.sign(message)).decode()
    issued_at   = datetime.utcnow().isoformat()
    expires_at  = (now + timedelta(seconds=ttl)).isoformat()

Use as a module (end-to-end tests import it):

    import clawshield
    priv_pem, pub_pem = clawshield.keygen()
    art = clawshield.mint(priv_pem, "acme", "echo", {"x": 1}, ttl=300)

or as a command:

    clawshield.py keygen --out PREFIX            writes PREFIX.key, PREFIX.pub
    clawshield.py mint --key PRIV --tenant T --action A [--payload JSON]
                       [--ttl S] [--approval-id ID] [--issued-at T]
                       [--expires-at T]          prints the artifact (1 line)
    clawshield.py action-hash --action A [--payload JSON]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["keygen", "mint", "action_hash", "signed_message", "utcnow_naive"]


def utcnow_naive():
    """datetime.utcnow() without its Python 3.12 deprecation warning: the
    same naive UTC value, so isoformat() writes the same text."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def action_hash(action, payload):
    """sha256 hex of the compact, key-sorted JSON of {action, payload};
    a payload of None means {} (SPEC 3.3)."""
    if payload is None:
        payload = {}
    canon = json.dumps({"action": action, "payload": payload}, sort_keys=True,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def signed_message(approval_id, tenant_id, act_hash, issued_at, expires_at):
    """The bytes ClawShield signs: a plain concatenation (SPEC 4)."""
    return (approval_id + tenant_id + act_hash + issued_at + expires_at).encode()


def keygen():
    """A new Ed25519 key pair as (private PKCS#8 PEM, public SPKI PEM), str."""
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return priv, pub


def _load_private(priv_pem):
    if isinstance(priv_pem, str):
        priv_pem = priv_pem.encode()
    key = serialization.load_pem_private_key(priv_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def mint(priv_pem, tenant, action, payload, ttl=300, approval_id=None,
         issued_at=None, expires_at=None):
    """Returns the artifact dict ClawShield would issue.

    issued_at / expires_at, when given, are used verbatim (strings), so tests
    can mint artifacts for any instant or with malformed times; otherwise
    issued_at is now and expires_at now + ttl seconds, as isoformat() text.
    """
    key = _load_private(priv_pem)
    now = utcnow_naive()
    if approval_id is None:
        approval_id = str(uuid.uuid4())
    if issued_at is None:
        issued_at = now.isoformat()
    if expires_at is None:
        expires_at = (now + datetime.timedelta(seconds=ttl)).isoformat()
    act_hash = action_hash(action, payload)
    message = signed_message(approval_id, tenant, act_hash, issued_at,
                             expires_at)
    signature = base64.b64encode(key.sign(message)).decode()
    return {
        "approval_id": approval_id,
        "tenant_id": tenant,
        "action_hash": act_hash,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "signature": signature,
    }


def _write_new(path, data, mode):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def _main(argv):
    p = argparse.ArgumentParser(prog="clawshield.py",
                                description="Mint ClawShield approval "
                                            "artifacts (test reference).")
    sub = p.add_subparsers(dest="cmd", required=True)

    k = sub.add_parser("keygen", help="write PREFIX.key and PREFIX.pub")
    k.add_argument("--out", default="clawshield")

    m = sub.add_parser("mint", help="print a signed artifact as one line")
    m.add_argument("--key", required=True, help="private key PEM file")
    m.add_argument("--tenant", required=True)
    m.add_argument("--action", required=True)
    m.add_argument("--payload", default="{}", help="JSON (default {})")
    m.add_argument("--ttl", type=float, default=300)
    m.add_argument("--approval-id")
    m.add_argument("--issued-at")
    m.add_argument("--expires-at")

    h = sub.add_parser("action-hash", help="print the action hash")
    h.add_argument("--action", required=True)
    h.add_argument("--payload", default="{}")

    a = p.parse_args(argv)
    if a.cmd == "keygen":
        priv, pub = keygen()
        _write_new(a.out + ".key", priv, 0o600)
        _write_new(a.out + ".pub", pub, 0o644)
        print(a.out + ".key", a.out + ".pub")
    elif a.cmd == "mint":
        with open(a.key) as f:
            priv = f.read()
        art = mint(priv, a.tenant, a.action, json.loads(a.payload),
                   ttl=a.ttl, approval_id=a.approval_id,
                   issued_at=a.issued_at, expires_at=a.expires_at)
        print(json.dumps(art, separators=(",", ":")))
    else:
        print(action_hash(a.action, json.loads(a.payload)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
