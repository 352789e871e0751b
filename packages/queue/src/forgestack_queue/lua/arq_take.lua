-- Takes the calls a plain arq pool enqueued that no ForgeStack worker has taken yet: the ids in
-- arq's queue (a sorted set scored by run time) missing from our taken set. Each is marked at once
-- (score -now: being added), so two workers never take one call; the caller adds it to our queue,
-- then marks it with arq's enqueue time of that call (arq_sync.lua 'mark'). With nothing in
-- arq's queue and nothing taken, it costs a ZCARD and an EXISTS.
-- KEYS: arq's queue, taken
-- ARGV: arq job key prefix, most calls to take, taken window start, taken window size
-- Returns {now, taken count, {{id, score, job bytes (false once its key expired), pttl}, ...},
--   the taken window {id, score, ...} for the caller to mirror}
local count = redis.call('ZCARD', KEYS[2])
local take = tonumber(ARGV[2]) > 0 and redis.call('EXISTS', KEYS[1]) == 1
if not take and count == 0 then return {'0', 0, {}, {}} end
local now = server_now()
local fresh_out = {}
if take then
  local fresh = redis.call('ZDIFF', 2, KEYS[1], KEYS[2], 'WITHSCORES')
  local last = math.min(#fresh, tonumber(ARGV[2]) * 2)
  for i = 1, last, 2 do
    local id = fresh[i]
    local key = ARGV[1] .. id
    redis.call('ZADD', KEYS[2], num(-now), id)
    fresh_out[#fresh_out + 1] = {id, fresh[i + 1], redis.call('GET', key), redis.call('PTTL', key)}
  end
end
count = redis.call('ZCARD', KEYS[2])
local window = {}
if count > 0 then
  local first = tonumber(ARGV[3])
  window = redis.call('ZRANGE', KEYS[2], first, first + tonumber(ARGV[4]) - 1, 'WITHSCORES')
end
return {num(now), count, fresh_out, window}
