-- replay.lua - the same /execute body on every request.  bench/run sends it
-- once first (the priming request), so every request of the run is a
-- replay answered from the stored bytes with Idempotent-Replayed: true.
-- Static request: no Lua per request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/execute"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_REPLAY_BODY")
