-- wrk script for `make bench` (tests/bench/bench.py): POST /orders with a
-- random item and quantity, the same shape as tests/bench/order.sql sends to
-- pgbench, so both sides do the same work.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local items = { "book", "pen", "lamp", "mug", "desk", "chair", "cable", "plant" }

request = function()
    local body = string.format('{"item": "%s-%d", "quantity": %d}',
        items[math.random(#items)], math.random(1, 1000000), math.random(1, 5))
    return wrk.format(nil, nil, nil, body)
end
