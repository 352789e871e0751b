-- Moves failed jobs back to waiting with their attempts reset: one id, or up to N of the oldest.
-- KEYS: failed set to take ids from (the queue's, or an owner's index), queue failed, wait,
--   marker
-- ARGV: job key prefix, queue key prefix, queue, mode ('one'|'bulk'), id or batch size
-- Returns {moved count, state of the job when mode is 'one' and it was not failed}.
local jp, q, queue, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, t = server_now()
local ids
if mode == 'one' then
  local key = jp .. ARGV[5]
  if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= queue then
    return {0, 'missing'}
  end
  local state = redis.call('HGET', key, 'state')
  if state ~= 'failed' then return {0, state} end
  ids = {ARGV[5]}
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
end
for _, id in ipairs(ids) do
  local key = jp .. id
  redis.call('ZREM', KEYS[2], id)
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local f = redis.call('HMGET', key, 'priority', 'created_at', 'hist')
    -- 'cancel': a job cancelled while running keeps its flag; the retried one must not inherit it.
    -- No attempts_started reads as none made. finished_at, processed_at, attempts_made, token:
    -- fields of the layouts before records.py's, which must not outlive the attempts they told.
    redis.call('HDEL', key, 'failed_reason', 'stacktrace', 'result', 'cancel', 'attempts_started',
      'finished_at', 'processed_at', 'attempts_made', 'token')
    redis.call('HSET', key, 'state', 'waiting', 'hist', entry_after(f[2], f[3], 'm', nil, now))
    emit(q, 'retrying', id, 'r', 'manual retry')
    local score = fair_score(q, id, tonumber(f[1]) or 0)
    redis.call('ZADD', KEYS[3], score, id)
    index_move(q, id, 'failed', 'wait', score)
  else
    index_move(q, id, 'failed', nil)
  end
end
if #ids > 0 then redis.call('ZADD', KEYS[4], 0, '0') end
return {#ids, 'failed'}
