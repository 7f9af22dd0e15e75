-- demo.lua - demo-mode echo with a fresh nonce on every request.
--
-- Nonce = run id (BENCH_RUN_ID, unique per bench/run) + wrk thread id +
-- a per-thread counter, so no two requests of a run share a nonce and none
-- collides with an earlier run against the same database.  Every request is
-- an execution: one durable row, answered after its commit.
-- BENCH_MAX_REQUESTS (optional) caps the requests of each thread; a thread
-- that reaches it stops (the long RSS mode counts requests, not seconds).
-- BENCH_NONCES=random sends 124 random bits in hex instead, as clients that
-- use uuid4 nonces do: the nonce index then takes a write at a random place
-- per execution instead of growing at its end.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local prefix
local n = 0
local random_nonces = os.getenv("BENCH_NONCES") == "random"
local limit = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")

function init(args)
   local run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
   prefix = '{"action":"echo","payload":{"amount":5},"nonce":"' .. run .. "-" .. tid .. "-"
   math.randomseed(os.time() * 64 + tid)
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   n = n + 1
   if limit > 0 and n == limit + 1 then
      wrk.thread:stop()
   end
   if random_nonces then
      return wrk.format("POST", "/execute", nil, prefix .. string.format("%08x%08x%08x%08x",
         math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
         math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)) .. '"}')
   end
   return wrk.format("POST", "/execute", nil, prefix .. n .. '"}')
end
