-- Applies a retention rule to one finished set, bounded per call (see trim_finished).
-- KEYS: the set (declared for cluster routing; the script builds it from ARGV)
-- ARGV: job key prefix, queue key prefix, part (completed|failed), keep count (-1 none),
--   keep age s (-1 none), most removals
-- Returns the number removed; fewer than `most` means the set now meets the rule.
local now, t = server_now()
return trim_finished(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), now)
