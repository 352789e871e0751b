-- Mirrors our jobs' states into arq's keys for calls taken from arq's queue, so a plain arq pool's
-- `Job` answers with arq's meanings. A row acts only while the taken marker still holds the score
-- its caller read: a stale row (another worker answered it, or the id was taken anew) is skipped.
-- KEYS: arq's queue, taken
-- ARGV: arq job key prefix, in-progress prefix, result prefix, retry prefix,
--   then rows of 5: action, arq id, expected marker score, a, b
--   mark    a = the marker's new score: arq's enqueue time of the call now in our queue
--   drop    forgets the marker (the call left arq's queue, or the take went stale)
--   active  a = ms the in-progress key lives (the lease): arq's `in_progress`
--   wait    removes the in-progress key; a = the call's new run time in arq's queue ('' keeps it)
--   answer  a = arq's result bytes ('' when none is kept), b = ms to keep them ('' for ever);
--           the call leaves arq's queue with its job, in-progress and retry keys, as in arq
--   gone    our job was removed before it ended: the call leaves arq's keys with no result
-- Returns how many rows acted.
local jp, ip, rp, tp = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local acted = 0
for i = 5, #ARGV, 5 do
  local action, id, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 4]
  local held = tonumber(redis.call('ZSCORE', KEYS[2], id))
  if held and held == tonumber(ARGV[i + 2]) then
    acted = acted + 1
    if action == 'mark' then
      redis.call('ZADD', KEYS[2], a, id)
    elseif action == 'drop' then
      redis.call('ZREM', KEYS[2], id)
    elseif action == 'active' then
      redis.call('SET', ip .. id, '1', 'PX', a)
    elseif action == 'wait' then
      redis.call('DEL', ip .. id)
      if a ~= '' then redis.call('ZADD', KEYS[1], 'XX', a, id) end
    else
      if action == 'answer' and a ~= '' then
        if b == '' then
          redis.call('SET', rp .. id, a)
        else
          redis.call('SET', rp .. id, a, 'PX', b)
        end
      end
      redis.call('DEL', jp .. id, ip .. id, tp .. id)
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
    end
  end
end
return acted
