-- Shared by the wrk scripts of bench/run.sh: at the end of a run, one machine-readable line
--   BENCH requests=N duration_us=N rps=X p50_us=N p99_us=N status_errors=N socket_errors=N ok=N
-- ok is the number of 2xx/3xx responses counted by the script's response() (-1 when the
-- script has none: then ok = requests - status_errors). Loaded with dofile("bench/report.lua").

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  thread:set("ok", 0)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local ok = -1
  if counting then
    ok = 0
    for _, thread in ipairs(threads) do
      ok = ok + thread:get("ok")
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d status_errors=%d socket_errors=%d ok=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, ok))
end
