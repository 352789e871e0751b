-- Removes up to `limit` jobs of one state older than a cut-off: finished jobs by finished_at,
-- waiting and delayed jobs by created_at.
-- KEYS: the state's set
-- ARGV: job key prefix, state, older_than_ms, limit
-- Returns the number removed.
local jp, state, limit = ARGV[1], ARGV[2], tonumber(ARGV[4])
local now, t = server_now()
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
