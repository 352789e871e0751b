-- Prepended to every script at load time (scripts.py): one definition of time and run order.
local function num(x) return string.format('%.0f', x) end

-- Server time in ms (and the raw TIME reply): every worker and producer shares one clock.
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t
end

-- A job's score in a wait set: priority first (0, no priority, runs first), then FIFO by a 32-bit
-- sequence. priority < 2^21 keeps the sum exact in a double.
local function run_score(priority, seq_key)
  local seq = redis.call('INCR', seq_key) % 4294967296
  return num(priority * 4294967296 + seq)
end

