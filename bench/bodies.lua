-- bodies.lua - pre-minted /execute bodies, each sent exactly once.
--
-- BENCH_BODIES names a prefix; wrk thread `tid` reads PREFIX.<tid> (one
-- body per line, written by bench/mint.py), so threads own disjoint slices
-- and no approval artifact is presented twice to one database.  With
-- BENCH_DENY_EVERY=N, every N-th request of a thread is taken from
-- PREFIX.bad.<tid> instead: bodies the server must deny (the mix scenario).
-- A thread that runs out marks itself `exhausted` and stops (bench/run then
-- flags the row instead of silently replaying artifacts).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local good, bad = {}, {}
local n, g, b = 0, 0, 0
local deny_every = tonumber(os.getenv("BENCH_DENY_EVERY") or "0")
exhausted = 0

local function load(path, into)
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      into[#into + 1] = line
   end
   f:close()
end

function init(args)
   local prefix = os.getenv("BENCH_BODIES")
   load(prefix .. "." .. tid, good)
   if deny_every > 0 then
      load(prefix .. ".bad." .. tid, bad)
   end
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local body
   n = n + 1
   if deny_every > 0 and n % deny_every == 0 then
      b = b + 1
      body = bad[b]
      bad[b] = nil
   else
      g = g + 1
      body = good[g]
      good[g] = nil
   end
   if body == nil then
      if exhausted == 0 then
         exhausted = 1
         wrk.thread:stop()
      end
      return wrk.format("GET", "/ready")
   end
   return wrk.format("POST", "/execute", nil, body)
end
