-- wrk script for bench/run.sh: POST /api/v1/petitions/SLUG/signatures (the path is wrk's URL)
-- with a new random-looking email address on every request: 16 random hex digits as the local
-- part, the random generator seeded per thread from the time and the thread's number, so the
-- threads never replay each other's sequence. Counts the 2xx/3xx answers (the acknowledged
-- signatures) for the database check.
dofile("bench/report.lua")
counting = true

function init(args)
  math.randomseed(os.time() * 1000 + id * 7919 + math.floor((os.clock() * 1e6) % 1000))
  -- LuaJIT's first values after seeding are weak; throw a few away.
  for _ = 1, 10 do math.random() end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local email = string.format("%08x%08x@example.org",
    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  local body = '{"name":"Load Test","email":"' .. email .. '","country":"NO","consent":true}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 400 then
    ok = ok + 1  -- a global of this thread, read by done() through thread:get
  end
end
