-- Removes up to `limit` jobs of one state older than a cut-off: finished jobs by finished_at,
-- waiting and delayed jobs by created_at.
-- KEYS: the state's set
-- ARGV: job key prefix, state, older_than_ms, limit
-- Returns the number removed.
local function num(x) return string.format('%.0f', x) end
local jp, state, limit = ARGV[1], ARGV[2], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now - tonumber(ARGV[3])
local removed = {}
if state == 'completed' or state == 'failed' then
  removed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(cutoff), 'LIMIT', 0, limit)
else
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if #removed >= limit then break end
    local created = tonumber(redis.call('HGET', jp .. id, 'created_at') or '0')
    if created <= cutoff then removed[#removed + 1] = id end
  end
end
for _, id in ipairs(removed) do redis.call('DEL', jp .. id) end
if #removed > 0 then redis.call('ZREM', KEYS[1], unpack(removed)) end
return #removed
