-- One write to a store, run by Redis without interleaving another command.
-- KEYS: the store's hash of values and revisions, its revision counter, its fencing record.
-- ARGV: op (put, delete, clear, fence: record the writer only), key, value, mode ("", absent, revision), the revision
-- wanted, the writer, its fencing token (0 or less: unfenced).
-- Answers {"ok", revision}, {"conflict"}, {"absent"} or {"fenced", writer, token}.
-- The fencing rule is driver.Fencing.Against's: refused when the store holds a newer token,
-- or the same token of another writer; recorded when the writer's token is newer.
-- Every check comes before the first change, so a refused write changes nothing.
local op, key, value, mode, want = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local writer, token = ARGV[6], tonumber(ARGV[7])

local record = false
if token > 0 then
  local held = redis.call('HMGET', KEYS[3], 'writer', 'token')
  local holder, current = held[1] or '', tonumber(held[2]) or 0
  if not (current == token and holder == writer) then
    if current >= token then
      return {'fenced', holder, tostring(current)}
    end
    record = true
  end
end

if op == 'fence' then
  if record then
    redis.call('HSET', KEYS[3], 'writer', writer, 'token', ARGV[7])
  end
  return {'ok', ''}
end

local rev = false
if op ~= 'clear' then
  rev = redis.call('HGET', KEYS[1], 'r:' .. key)
  if op == 'delete' and not rev then
    return {'absent'}
  end
  if mode == 'absent' and rev then
    return {'conflict'}
  end
  if mode == 'revision' and rev ~= want then
    return {'conflict'}
  end
end

if record then
  redis.call('HSET', KEYS[3], 'writer', writer, 'token', ARGV[7])
end
if op == 'clear' then
  redis.call('DEL', KEYS[1])
  return {'ok', ''}
end
if op == 'delete' then
  redis.call('HDEL', KEYS[1], 'v:' .. key, 'r:' .. key)
  return {'ok', ''}
end
local next = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v:' .. key, value, 'r:' .. key, next)
return {'ok', tostring(next)}
