-- wrk script for bench/dni.sh: POST /v1/dni/sessions, the request the DNI tag sends.
--
-- Usage: wrk -s bench/dni.lua URL -- CAMPAIGN PAGE_ORIGIN P_RETURN RETURNING_PER_THREAD RUN_TAG [prime]
--   CAMPAIGN              campaign key (cmp_…)
--   PAGE_ORIGIN           e.g. http://127.0.0.1:8080 (sent as Origin, and the host of page_url)
--   P_RETURN              probability that a request comes from a returning visitor (0..1)
--   RETURNING_PER_THREAD  size of each thread's fixed set of returning visitors
--   RUN_TAG               unique per wrk run, so that "new" visitor ids are new in every run
--   prime                 optional: each thread first sends every visitor of its returning set
--                         once, in order (the warm-up does this, so that they have been seen)
--
-- The same script, headers and bodies are used against nginx. At the end it prints one line
--   BENCH requests=… duration_s=… rps=… p50_ms=… p99_ms=… non2xx=… errors=… new=… returning=… unattributed=…
-- where new/returning count what was sent and unattributed counts 200 answers carrying
-- "attributed":false (pool exhausted: the run must then be thrown away).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local campaign, origin, p_return, n_returning, run_tag, prime
-- Globals, not locals: done() reads them from each thread with thread:get().
counter, sent_new, sent_returning, unattributed, non200 = 0, 0, 0, 0, 0
local primed = 0
local headers

function init(args)
   campaign = args[1] or error("campaign key missing")
   origin = args[2] or error("page origin missing")
   p_return = tonumber(args[3] or "0.9")
   n_returning = tonumber(args[4] or "1000")
   run_tag = args[5] or tostring(os.time())
   prime = (args[6] == "prime")
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   headers = {
      ["Origin"] = origin,
      ["Content-Type"] = "text/plain;charset=UTF-8",
   }
end

local function body(visitor)
   return '{"campaign":"' .. campaign .. '","visitor":"' .. visitor ..
      '","page_url":"' .. origin .. '/landing?utm_source=google&gclid=abc","referrer":null}'
end

local function returning_id(k)
   return string.format("ret-t%d-%07d", tid, k)
end

function request()
   local visitor
   if prime and primed < n_returning then
      visitor = returning_id(primed)
      primed = primed + 1
      sent_returning = sent_returning + 1
   elseif n_returning > 0 and math.random() < p_return then
      visitor = returning_id(math.random(0, n_returning - 1))
      sent_returning = sent_returning + 1
   else
      counter = counter + 1
      visitor = string.format("new-%s-t%d-%d", run_tag, tid, counter)
      sent_new = sent_new + 1
   end
   return wrk.format("POST", nil, headers, body(visitor))
end

function response(status, hdrs, resp)
   if status ~= 200 then
      non200 = non200 + 1
   elseif resp and string.find(resp, '"attributed":false', 1, true) then
      unattributed = unattributed + 1
   end
end

function done(summary, latency, requests)
   local new, ret, unattr, bad = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      new = new + (t:get("sent_new") or 0)
      ret = ret + (t:get("sent_returning") or 0)
      unattr = unattr + (t:get("unattributed") or 0)
      bad = bad + (t:get("non200") or 0)
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d new=%d returning=%d unattributed=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      bad, e.connect + e.read + e.write + e.status + e.timeout,
      new, ret, unattr))
end
