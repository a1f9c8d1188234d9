-- wrk script for bench/run.sh: POST /confirm/TOKEN for the confirmation links the SMTP sink
-- saved (one path a line, in the file named by the environment variable BENCH_CONFIRM_URLS).
-- Thread i of n takes lines i, i+n, i+2n…, so no two threads confirm the same signature; a
-- thread that has used all its links starts again at its first (those answer 200 "already
-- confirmed"). Counts the 2xx/3xx answers.
dofile("bench/report.lua")
counting = true

local paths = {}
local next_path = 1
function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("BENCH_CONFIRM_URLS")) do
    if i % threads == id then
      table.insert(paths, line)
    end
    i = i + 1
  end
  assert(#paths > 0, "no confirmation links for thread " .. id)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local path = paths[next_path]
  next_path = next_path % #paths + 1
  return wrk.format(nil, path, nil, "")
end

function response(status, headers, body)
  if status >= 200 and status < 400 then
    ok = ok + 1  -- a global of this thread, read by done() through thread:get
  end
end
