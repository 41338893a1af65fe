-- wrk script of the webhook benchmark: POSTs DLR forms read from a file, each thread taking
-- every n-th line so that no two connections send the same report, and counts answers that
-- are not "200 ACK/Jasmin".
-- Arguments (after --): <requests file> <thread count>; file lines are "<path>\t<form body>".

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

function init(args)
   local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   reqs = {}
   for line in io.lines(args[1]) do
      local path, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
   end
   step = tonumber(args[2])
   idx = id
   bad = 0
end

function request()
   local r = reqs[(idx % #reqs) + 1]
   idx = idx + step
   return r
end

function response(status, headers, body)
   if status ~= 200 or body ~= "ACK/Jasmin" then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local not_acked = 0
   for _, t in ipairs(threads) do
      not_acked = not_acked + t:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "not_acked": %d, ' ..
      '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, e.status, not_acked,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean))
   -- The whole latency histogram, so that runs can be merged exactly.
   local parts = {}
   for i = 1, #latency do
      local value, count = latency(i)
      parts[#parts + 1] = string.format("[%d,%d]", value, count)
   end
   io.write("WRK_HISTOGRAM [" .. table.concat(parts, ",") .. "]\n")
end
