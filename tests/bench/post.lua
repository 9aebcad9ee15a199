-- tests/bench/post.lua: the wrk script of tests/bench/server.sh. Every request is a
-- keep-alive POST /k8s/validate of one AdmissionReview (PAVED_BENCH_BODY, default
-- tests/bench/review-8k.json) with Content-Type: application/json. No response()
-- callback: it would make wrk parse every answer in Lua and slow the client down.
-- done() prints one machine-readable line for server.sh after wrk's own report.
local path = os.getenv("PAVED_BENCH_BODY") or "tests/bench/review-8k.json"
local f = assert(io.open(path, "rb"), "cannot open " .. path)
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = "/k8s/validate"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
    "p999_us=%d max_us=%d mean_us=%.1f non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d body_bytes=%d\n",
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout, #body))
end
