#!/usr/bin/env node
// client.mjs - an OpenExec client for Node.js 18+ with no dependencies.
//
// Runs one action exactly once, the way a careful client should:
//   1. picks a fresh nonce for the logical request (crypto.randomUUID);
//   2. POSTs /execute, and on a timeout, a dropped connection, 503 or 409
//      request_in_progress sends the SAME bytes again (same nonce), with
//      exponential backoff and jitter, honouring Retry-After, a bounded
//      number of times.  The server runs a nonce at most once, so a retry
//      can never run the action twice: at worst it gets the first answer;
//   3. sends the request once more on purpose and shows that the answer is
//      the stored one, byte for byte, with Idempotent-Replayed: true;
//   4. verifies the signed receipt: by POST /receipts/verify, and offline
//      (SPEC 5.2): crypto.verify with Ed25519 over the checkpoint body with
//      the log's key (GET /receipts/key), the RFC 6962 inclusion proof
//      recomputed with SHA-256, and that the receipt describes this request.
//
// In production, fetch the key once and pin it (configuration, not a
// request per call): a key fetched from the server you are checking proves
// little.
//
// Usage: node client.mjs [--url URL] [--action echo] [--payload JSON]
//                        [--nonce N] [--timeout S] [--attempts N]
// Environment: OPENEXEC_URL (default http://127.0.0.1:5000),
// OPENEXEC_TIMEOUT (seconds per attempt, default 10), OPENEXEC_ATTEMPTS (5).
// Exit status: 0 executed and verified, 1 refused or not verified, 2 usage.

import { createHash, createPublicKey, randomUUID, verify } from "node:crypto";
import { parseArgs } from "node:util";

const MAX_BACKOFF = 5.0; // seconds
const MAX_RETRY_AFTER = 30.0;

const log = (msg) => console.error(msg);
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const sha256 = (...parts) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

function usage(msg) {
  log(`client.mjs: ${msg}\nusage: node client.mjs [--url URL] [--action A] [--payload JSON] [--nonce N] [--timeout S] [--attempts N]`);
  process.exit(2);
}

class Client {
  constructor(url, timeout) {
    this.base = url.replace(/\/+$/, "");
    this.timeout = timeout;
  }

  // One attempt: {status, headers, body: Buffer}.  Throws on network
  // trouble and on timeouts (AbortSignal.timeout).
  async request(method, path, body) {
    const res = await fetch(this.base + path, {
      method,
      body,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      signal: AbortSignal.timeout(this.timeout * 1000),
    });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  async getJson(path) {
    const r = await this.request("GET", path);
    if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}`);
    return JSON.parse(r.body);
  }

  async postJson(path, obj) {
    const r = await this.request("POST", path, JSON.stringify(obj));
    return { status: r.status, doc: JSON.parse(r.body) };
  }
}

// POSTs body to /execute until an answer that is final, at most `attempts`
// times.  body is sent unchanged every time: the same nonce is what makes
// the retry safe.  Returns null when every attempt failed.
async function executeWithRetries(client, body, attempts) {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let delay = Math.min(MAX_BACKOFF, 0.2 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
    let why;
    try {
      const r = await client.request("POST", "/execute", body);
      let code = null;
      if (r.status === 409) {
        try { code = JSON.parse(r.body).error; } catch { /* not JSON */ }
      }
      if (r.status !== 503 && code !== "request_in_progress") return r;
      why = `HTTP ${r.status}${code ? " " + code : ""}`;
      const ra = r.headers.get("retry-after");
      if (ra && /^[0-9]+$/.test(ra)) delay = Math.min(MAX_RETRY_AFTER, Number(ra));
    } catch (e) {
      why = e.name === "TimeoutError" ? "timed out" : `${e.name}: ${e.cause?.code ?? e.message}`;
    }
    if (attempt === attempts) {
      log(`attempt ${attempt}/${attempts}: ${why}; giving up`);
      break;
    }
    log(`attempt ${attempt}/${attempts}: ${why}; retrying with the same nonce in ${delay.toFixed(1)}s`);
    await sleep(delay);
  }
  return null;
}

// ---- canonical JSON (SPEC 3.3): Python's json.dumps(sort_keys=True) ------
// Strings, integers, true/false/null, arrays and objects.  Python writes
// non-integral numbers with repr(), which JavaScript's number formatting
// does not reproduce in general, so they are refused here (receipts never
// hold one; a payload or result with one skips the checks that need it).

class NotCanonical extends Error {}

function canonString(s) {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xffff)) out += "\\u" + cp.toString(16).padStart(4, "0");
    else if (cp > 0xffff) {
      for (let i = 0; i < ch.length; i++) out += "\\u" + ch.charCodeAt(i).toString(16).padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}

// Python sorts keys by code point; JavaScript's default sort compares
// UTF-16 code units, which differs above U+FFFF.
function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function canon(v, spaced = false) {
  const [comma, colon] = spaced ? [", ", ": "] : [",", ":"];
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "string") return canonString(v);
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return String(v);
    throw new NotCanonical(`number ${v} (only integers are canonicalised here)`);
  }
  if (Array.isArray(v)) return "[" + v.map((x) => canon(x, spaced)).join(comma) + "]";
  const keys = Object.keys(v).sort(byCodePoint);
  return "{" + keys.map((k) => canonString(k) + colon + canon(v[k], spaced)).join(comma) + "}";
}

// True when JSON text holds a number written with a fraction or exponent:
// JSON.parse turns 2.0 into 2, so such a value cannot be re-canonicalised
// from the parsed object.
function hasRealNumber(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j])) j++;
      if (/[.eE]/.test(text.slice(i, j))) return true;
      i = j - 1;
    }
  }
  return false;
}

// ---- offline verification (SPEC 5.2, RFC 6962 / RFC 9162) ----------------

// RFC 9162 2.1.3.2: the root that the inclusion proof leads to.
function rootFromInclusion(leaf, index, size, hashes) {
  if (index >= size) throw new Error(`index ${index} outside tree of size ${size}`);
  let fn = BigInt(index), sn = BigInt(size - 1), r = leaf;
  for (const p of hashes) {
    if (sn === 0n) throw new Error("inclusion proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = sha256(Buffer.from([1]), p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = sha256(Buffer.from([1]), r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof too short");
  return r;
}

function verifyOffline(signed, keyInfo) {
  const { receipt, inclusion, checkpoint } = signed;
  const origin = keyInfo.origin;
  const key = createPublicKey({ key: keyInfo.public_key_pem, format: "pem" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("the log key is not Ed25519");
  const raw = key.export({ format: "der", type: "spki" }).subarray(12); // the 32 key bytes

  const sep = checkpoint.indexOf("\n\n");
  if (sep < 0) throw new Error("checkpoint has no signature block");
  const body = checkpoint.slice(0, sep + 1);
  const lines = body.split("\n");
  if (lines[0] !== origin) throw new Error(`checkpoint is not of log ${origin}`);
  const size = Number(lines[1]);
  const root = Buffer.from(lines[2], "base64");
  const keyHash = sha256(Buffer.from(origin + "\n"), Buffer.from([1]), raw).subarray(0, 4);
  let ok = false;
  for (const line of checkpoint.slice(sep + 2).split("\n")) {
    if (!line.startsWith(`\u2014 ${origin} `)) continue;
    const blob = Buffer.from(line.slice(line.lastIndexOf(" ") + 1), "base64");
    if (blob.length === 68 && blob.subarray(0, 4).equals(keyHash))
      ok = ok || verify(null, Buffer.from(body, "utf8"), key, blob.subarray(4));
  }
  if (!ok) throw new Error("no valid signature by the log's key on the checkpoint");

  if (inclusion.size !== size || receipt.seq !== inclusion.index || receipt.log !== origin)
    throw new Error("receipt, proof and checkpoint disagree");
  const leaf = sha256(Buffer.from([0]), Buffer.from(canon(receipt), "utf8"));
  const hashes = inclusion.hashes.map((h) => Buffer.from(h, "base64"));
  if (!rootFromInclusion(leaf, inclusion.index, size, hashes).equals(root))
    throw new Error("inclusion proof does not lead to the signed root");
}

// The receipt must describe this request and this answer.  Returns a note
// when the payload or result holds numbers this canon does not handle.
function checkReceiptMatches(receipt, answer, action, payload, nonce, payloadText, answerText) {
  const want = {
    exec_id: answer.id,
    action,
    nonce_sha256: sha256(Buffer.from(nonce, "utf8")).toString("hex"),
    outcome: "executed",
    status: 200,
    error: null,
  };
  const skipped = [];
  const recompute = (name, text, value, spaced) => {
    try {
      if (hasRealNumber(text)) throw new NotCanonical("it holds a non-integral number");
      want[name] = sha256(canon(value, spaced)).toString("hex");
    } catch (e) {
      if (!(e instanceof NotCanonical)) throw e;
      skipped.push(`${name} (${e.message})`);
    }
  };
  recompute("action_hash", payloadText, { action, payload: payload ?? {} }, false);
  recompute("result_sha256", answerText, answer.result, true);
  const note = skipped.length ? ` (not recomputed here: ${skipped.join(", ")})` : "";
  for (const [k, v] of Object.entries(want))
    if (receipt[k] !== v) throw new Error(`receipt ${k} is ${JSON.stringify(receipt[k])}, expected ${JSON.stringify(v)}`);
  return note;
}

async function main() {
  let opts;
  try {
    opts = parseArgs({
      options: {
        url: { type: "string", default: process.env.OPENEXEC_URL || "http://127.0.0.1:5000" },
        action: { type: "string", default: "echo" },
        payload: { type: "string", default: '{"hello": "world"}' },
        nonce: { type: "string" },
        timeout: { type: "string", default: process.env.OPENEXEC_TIMEOUT || "10" },
        attempts: { type: "string", default: process.env.OPENEXEC_ATTEMPTS || "5" },
      },
    }).values;
  } catch (e) {
    usage(e.message);
  }
  let payload;
  try { payload = JSON.parse(opts.payload); } catch (e) { usage(`--payload: ${e.message}`); }
  const timeout = Number(opts.timeout), attempts = Number(opts.attempts);
  if (!(timeout > 0)) usage("--timeout must be a positive number of seconds");
  if (!Number.isInteger(attempts) || attempts < 1) usage("--attempts must be a positive integer");

  const client = new Client(opts.url, timeout);
  const nonce = opts.nonce ?? randomUUID();
  const body = JSON.stringify({ action: opts.action, payload, nonce });
  console.log(`nonce: ${nonce}`);

  const first = await executeWithRetries(client, body, attempts);
  if (first === null) {
    log(`no final answer after ${attempts} attempts; it is safe to retry later with nonce ${nonce}`);
    return 1;
  }
  const doc = JSON.parse(first.body);
  if (first.status !== 200) {
    console.log(`refused: HTTP ${first.status} ${doc.error}: ${doc.detail}`);
    return 1;
  }
  const replayed = first.headers.get("idempotent-replayed") ? " (replayed: an earlier attempt had run it)" : "";
  console.log(`executed: id ${doc.id} result ${JSON.stringify(doc.result)}${replayed}`);

  // A deliberate retry with the same nonce: the stored answer, byte for byte.
  const again = await executeWithRetries(client, body, attempts);
  if (again === null || again.status !== first.status || !again.body.equals(first.body) ||
      again.headers.get("idempotent-replayed") !== "true") {
    console.log("replay differs from the first answer");
    return 1;
  }
  console.log(`replay: identical bytes (${again.body.length}), Idempotent-Replayed: true`);

  const signed = doc.signed_receipt;
  const v1 = await client.postJson("/receipts/verify", { signed_receipt: signed });
  if (v1.status !== 200 || v1.doc.valid !== true) {
    console.log(`server says the signed receipt is NOT valid: ${v1.status} ${JSON.stringify(v1.doc)}`);
    return 1;
  }
  // The legacy receipt hashes the result as Python writes it; a result with
  // a non-integral number (2.0) does not survive JSON.parse unchanged.
  let legacy = "legacy receipt not checked (the result holds a non-integral number)";
  if (!hasRealNumber(first.body.toString("utf8"))) {
    const v2 = await client.postJson("/receipts/verify", { exec_id: doc.id, result: doc.result, receipt: doc.receipt });
    if (v2.status !== 200 || v2.doc.valid !== true) {
      console.log(`server says the legacy receipt is NOT valid: ${v2.status} ${JSON.stringify(v2.doc)}`);
      return 1;
    }
    legacy = "legacy receipt valid";
  }
  console.log(`server verify: signed receipt valid, ${legacy}`);

  let note;
  try {
    verifyOffline(signed, await client.getJson("/receipts/key"));
    note = checkReceiptMatches(signed.receipt, doc, opts.action, payload, nonce,
                               opts.payload, first.body.toString("utf8"));
  } catch (e) {
    console.log(`offline verification FAILED: ${e.message}`);
    return 1;
  }
  console.log(`offline verify: Ed25519 checkpoint signature ok; inclusion proof of seq ${signed.inclusion.index} ` +
              `in ${signed.inclusion.size} entries ok; receipt matches this request${note}`);
  return 0;
}

process.exitCode = await main();
