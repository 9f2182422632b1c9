-- Shared by the wrk scripts: a chat request built from the environment, and a report line.
-- BENCH_KEY: bearer key (optional); BENCH_MODEL: model name (default bench-gpt).
local M = {}

function M.setup_chat(stream)
  local model = os.getenv("BENCH_MODEL") or "bench-gpt"
  local body = '{"model":"' .. model .. '","messages":['
    .. '{"role":"system","content":"You are a concise assistant. Answer in one sentence."},'
    .. '{"role":"user","content":"Describe what a quick brown fox does on a lazy afternoon."}'
    .. '],"max_tokens":64,"temperature":0.2'
  if stream then
    body = body .. ',"stream":true,"stream_options":{"include_usage":true}'
  end
  wrk.method = "POST"
  wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
  wrk.body = body .. "}"
  wrk.headers["Content-Type"] = "application/json"
  local key = os.getenv("BENCH_KEY")
  if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end

-- One JSON line on stdout, prefixed so the runner can find it among wrk's own output.
function M.report(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,'
      .. '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

return M
