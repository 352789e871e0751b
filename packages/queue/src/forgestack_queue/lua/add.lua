-- Adds jobs (_add.lua's add_jobs, which stands before this at load time: scripts.py).
-- KEYS and ARGV: add_jobs's, whole.
return add_jobs(KEYS, 0, #KEYS, ARGV, 0, #ARGV)
