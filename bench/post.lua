-- post.lua: wrk script for bench/run. Sends BENCH_METHOD (default POST)
-- with the body BENCH_BODY as application/json on every request, and at the
-- end prints one machine-readable line for bench/run to parse:
--
--   BENCH requests=N duration_us=N rps=R p50_us=N p99_us=N max_us=N
--         non2xx=N connect_err=N read_err=N write_err=N timeouts=N
--
-- (non2xx is wrk's count of responses outside 2xx/3xx).

local method = os.getenv("BENCH_METHOD") or "POST"
wrk.method = method
if method == "POST" then
  wrk.body = os.getenv("BENCH_BODY") or '{"features":[5.1,3.5,1.4,0.2]}'
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
