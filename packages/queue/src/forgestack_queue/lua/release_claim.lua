-- Undoes claims whose reply never reached the worker (the connection dropped after claim.lua ran):
-- their jobs go back to waiting with the attempt not spent, as if they had never been claimed.
-- Active sets hold at most the fleet's concurrency, so reading them whole is bounded.
-- KEYS: per queue, 3 keys: wait, active, marker (QueueKeys.release_keys)
-- ARGV: job key prefix, then the worker token each lost claim passed to claim.lua
-- Returns the number of jobs released.
local jp = ARGV[1]
local now, t = server_now()
local released = 0
for q = 0, #KEYS / 3 - 1 do
  local wait, active, marker = KEYS[q * 3 + 1], KEYS[q * 3 + 2], KEYS[q * 3 + 3]
  local here = 0
  for _, id in ipairs(redis.call('ZRANGE', active, 0, -1)) do
    local key = jp .. id
    -- pcall: a record overwritten with another type is not one of ours.
    local held = redis.pcall('HGET', key, 'token')
    if type(held) == 'string' then
      for i = 2, #ARGV do
        -- claim.lua's token is `<worker token>:<score claimed from>:<attempts started>`.
        local claim = ARGV[i] .. ':'
        if string.sub(held, 1, #claim) == claim then
          local f = redis.call('HMGET', key, 'priority', 'created_at', 'hist')
          redis.call('ZREM', active, id)
          redis.call('HINCRBY', key, 'attempts_started', -1)
          redis.call('HDEL', key, 'token')
          redis.call('HSET', key, 'state', 'waiting',
            'hist', entry_after(f[2], f[3], 'x', string.match(held, '(%d+)$'), now))
          local prio = tonumber(f[1]) or 0
          local qp = string.sub(wait, 1, -5)
          local score = released_score(qp, id, prio, held)
          redis.call('ZADD', wait, score, id)
          index_move(qp, id, 'active', 'wait', score)
          emit(qp, 'waiting', id, 'r', 'released')
          here = here + 1
          break
        end
      end
    end
  end
  if here > 0 then redis.call('ZADD', marker, 0, '0') end
  released = released + here
end
return released
