-- common.lua - shared by every bench/*.lua scenario (loaded with dofile).
--
-- setup() numbers the wrk threads (the global `tid`, 0-based, in each
-- thread's own Lua state) so scenarios can give each thread disjoint nonces
-- or a disjoint slice of pre-minted bodies.  done() prints one
-- machine-readable line that bench/run parses; wrk's own text report is
-- left as it is for humans.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local e = summary.errors
   local exhausted = 0
   for _, t in ipairs(threads) do
      exhausted = exhausted + (t:get("exhausted") or 0)
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f"
         .. " non2xx=%d connect=%d read=%d write=%d timeout=%d exhausted=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout,
      exhausted))
end
