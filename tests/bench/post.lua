-- wrk script for `make bench` (tests/bench/bench.py): POST /orders with a
-- random item and quantity, the same shape as tests/bench/order.sql sends to
-- pgbench, so both sides do the same work. The requests are formatted once,
-- before the run, and cycled: formatting one per request in Lua cost wrk
-- about 10% more CPU per order, on the same two CPUs the api and Postgres
-- use, where pgbench's own client is compiled C (docs/benchmarks.md).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local items = { "book", "pen", "lamp", "mug", "desk", "chair", "cable", "plant" }
local requests, count, next_index = {}, 4096, 0

for i = 1, count do
    local body = string.format('{"item": "%s-%d", "quantity": %d}',
        items[math.random(#items)], math.random(1, 1000000), math.random(1, 5))
    requests[i] = wrk.format(nil, nil, nil, body)
end

request = function()
    next_index = next_index % count + 1
    return requests[next_index]
end
