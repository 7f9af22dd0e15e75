-- ready.lua - the `floor` scenario: GET /ready, a static request (wrk sends
-- the same bytes every time, no Lua per request), so it measures the HTTP
-- layer of the server and of wrk alone.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/ready"
