-- wrk script for the ratio runs of `make bench` (loadtests/measure.py writes the arguments).
--
--   wrk -t2 -c100 -d10s --timeout 10s -s loadtests/wrk/turnout.lua http://127.0.0.1:8000 -- \
--       <mode> <expect> <credentials file or -> <event ids, comma-separated> <threads> [spread]
--
-- mode:    healthz | htmx | api
-- expect:  ok (healthz) | win (HX-Location to the confirmation page / 201 confirmed)
--          | full (panel "This event is full" / 409 event_full)
-- credentials: one person per line; htmx: "<Cookie header>\t<X-CSRFToken>", api: "<token>".
--
-- Every request uses the next person of this thread (threads take interleaved
-- people, so no two requests of a run share a person until the list wraps), and
-- people are spread over the events in blocks: a run registers for ONE event
-- until every person has had a turn ("spread": round-robin over the events
-- instead, so no event row is hot). Every answer is judged by its content;
-- done() prints one JSON line with throughput, latency and the judged counts.

local counter = 1
local threads = {}
-- Idempotency-Keys must be new in every run: the same people click in several runs.
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local run_id = string.format("%x%06x", os.time(), math.random(0, 16777215))

function setup(thread)
  thread:set("tid", counter - 1)
  thread:set("run_id", run_id)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mode, expect = args[1], args[2]
  local creds_path, event_list = args[3], args[4]
  nthreads = tonumber(args[5]) or 1
  spread = args[6] == "spread"
  people = {}
  if creds_path and creds_path ~= "-" then
    for line in io.lines(creds_path) do
      local a, b = line:match("^([^\t]*)\t?(.*)$")
      people[#people + 1] = { a, b }
    end
  end
  events = {}
  for e in string.gmatch(event_list or "", "%d+") do events[#events + 1] = e end
  sent, good, bad, wrapped = 0, 0, 0, 0
  sample = ""
end

function request()
  if mode == "healthz" then
    sent = sent + 1
    return wrk.format("GET", "/healthz")
  end
  local g = sent * nthreads + tid
  sent = sent + 1
  if g >= #people * #events then wrapped = wrapped + 1 end
  local person, event
  if spread then  -- round-robin over the events: no single hot event row
    person = people[(math.floor(g / #events) % #people) + 1]
    event = events[(g % #events) + 1]
  else
    person = people[(g % #people) + 1]
    event = events[(math.floor(g / #people) % #events) + 1]
  end
  if mode == "htmx" then
    return wrk.format("POST", "/events/" .. event .. "/register", {
      ["Cookie"] = person[1], ["X-CSRFToken"] = person[2], ["HX-Request"] = "true",
      ["User-Agent"] = "turnout-bench/1",
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, "idempotency_key=" .. run_id .. "-" .. tid .. "-" .. g)  -- as htmx sends the form's
  end
  return wrk.format("POST", "/api/events/" .. event .. "/registrations", {
    ["Authorization"] = "Bearer " .. person[1], ["Content-Type"] = "application/json",
    ["User-Agent"] = "turnout-bench/1", ["Idempotency-Key"] = run_id .. "-" .. tid .. "-" .. g,
  }, "{}")
end

local function judge(status, headers, body)
  if mode == "healthz" then return status == 200 and body == "ok" end
  if mode == "htmx" then
    if expect == "win" then
      local location = headers["HX-Location"] or headers["hx-location"] or ""
      return status == 200 and location:find("/confirmation", 1, true) ~= nil
    end
    return status == 200 and body:find("This event is full", 1, true) ~= nil
  end
  if expect == "win" then
    return status == 201 and body:find('"confirmed"', 1, true) ~= nil
  end
  return status == 409 and body:find("event_full", 1, true) ~= nil
end

function response(status, headers, body)
  if judge(status, headers, body) then
    good = good + 1
  else
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 160) end
  end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local good_total, bad_total, wrapped_total, first_sample = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    good_total = good_total + thread:get("good")
    bad_total = bad_total + thread:get("bad")
    wrapped_total = wrapped_total + thread:get("wrapped")
    local s = thread:get("sample")
    if first_sample == "" and s ~= nil then first_sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "rps": %.1f, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"judged": {"good": %d, "bad": %d, "wrapped": %d, "sample": %s}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    good_total, bad_total, wrapped_total, json_string(first_sample)))
end
