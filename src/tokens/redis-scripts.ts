/**
 * The Lua scripts of the Redis token store. Each one that changes anything first compares the
 * caller's deadline with Redis' own clock (`TIME`) and, when it has passed, answers TOO_LATE and
 * changes nothing: a request vncgate already gave up on (reply lost, server frozen, queued behind
 * a slow command) must not use a token up, or take a session slot, behind its caller's back
 * (issue 15). Deadlines are in Redis' clock, converted by `RedisClock`.
 *
 * Calling TIME before a write is allowed since Redis 5 replicates scripts by their effects (the only
 * mode left in 7); the store needs ≥ 6.2 anyway. Registered with ioredis `defineCommand`, so each
 * runs as EVALSHA with a transparent EVAL on NOSCRIPT (after a restart or SCRIPT FLUSH).
 */

/** Script answers that are not data. Kept apart from token records, which are JSON strings. */
export const SCRIPT_REPLY = {
  TOO_LATE: -1,
  /** The client address is in its invalid-link cool-down. */
  COOLING_DOWN: -2,
  /** A session slot is over its limit. */
  BUSY: -3,
} as const;

/** Redis' clock in milliseconds, as `now`; shared prologue of every guarded script. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const TOO_LATE = `if now >= tonumber(ARGV[1]) then return ${SCRIPT_REPLY.TOO_LATE} end`;

/**
 * Slot sets: one sorted set per limited key, members = lease owners (session ids) scored by their
 * expiry in Redis' clock. Expired members are dropped before counting, so a replica that crashed
 * without releasing frees its slots one lease TTL later. The key's own PEXPIRE follows its newest
 * member, so a set nobody renews disappears.
 */
const SLOTS_FULL = `local function slots_full(first, last, owner, limit)
  for i = first, last do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if not redis.call('ZSCORE', KEYS[i], owner) and redis.call('ZCARD', KEYS[i]) >= limit then return true end
  end
  return false
end
local function take_slots(first, last, owner, ttl)
  for i = first, last do
    redis.call('ZADD', KEYS[i], now + ttl, owner)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end`;

export interface ScriptDefinition {
  /** `undefined`: the caller passes the key count first (variable number of keys). */
  readonly numberOfKeys?: number;
  readonly lua: string;
}

export const SCRIPTS = {
  /**
   * Consume: KEYS[1] token, KEYS[2] cool-down key or '' or absent (none), KEYS[3..] slot sets;
   * ARGV[1] deadline, ARGV[2] owner, ARGV[3] limit, ARGV[4] lease TTL ms. Answers
   * {record, remaining TTL ms}: the TTL is what a restore needs if the delete does not reach
   * enough replicas (redis-store.ts). The token is deleted only if every slot could be taken, and
   * the slots taken only together with the delete: a link refused for a busy target stays
   * unused, and of concurrent users of one link exactly one gets both. On a Redis Cluster only
   * KEYS[1] is given (the other keys live in other slots; redis-keys.ts).
   */
  vncgateConsume: {
    lua: `${NOW}
${TOO_LATE}
${SLOTS_FULL}
if KEYS[2] and KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return ${SCRIPT_REPLY.COOLING_DOWN} end
local v = redis.call('GET', KEYS[1])
if not v then return v end
if #KEYS > 2 then
  if slots_full(3, #KEYS, ARGV[2], tonumber(ARGV[3])) then return ${SCRIPT_REPLY.BUSY} end
  take_slots(3, #KEYS, ARGV[2], tonumber(ARGV[4]))
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {v, ttl}`,
  },
  /**
   * Restore after a consume whose delete did not reach enough replicas: KEYS[1] token, KEYS[2]
   * its revocation mark; ARGV[1] deadline, ARGV[2] record, ARGV[3] TTL ms. The caller was refused,
   * so the link must keep working — unless it was revoked meanwhile (`revoke` leaves the mark).
   * NX: nothing else can have written this key (256 random bits), but never overwrite.
   */
  vncgateRestore: {
    numberOfKeys: 2,
    lua: `${NOW}
${TOO_LATE}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if tonumber(ARGV[3]) <= 0 then return 0 end
if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX') then return 1 end
return 0`,
  },
  /**
   * revoke: KEYS[1] token, KEYS[2] its revocation mark; ARGV[1] mark TTL ms. 1 if the token was
   * live. The mark outlives any restore of a consume that was running at the same time.
   */
  vncgateRevoke: {
    numberOfKeys: 2,
    lua: `local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n`,
  },
  /** Peek: KEYS[1] token, KEYS[2] cool-down key or ''. Read-only, so no deadline. */
  vncgatePeek: {
    numberOfKeys: 2,
    lua: `if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return ${SCRIPT_REPLY.COOLING_DOWN} end
return redis.call('GET', KEYS[1])`,
  },
  /** claimOnce: KEYS[1]; ARGV[1] deadline, ARGV[2] TTL ms. 1 = first claim, 0 = already claimed. */
  vncgateClaim: {
    numberOfKeys: 1,
    lua: `${NOW}
${TOO_LATE}
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[2], 'NX') then return 1 end
return 0`,
  },
  /** acquireLease (one session): KEYS[1]; ARGV[1] deadline, ARGV[2] owner, ARGV[3] TTL ms. */
  vncgateLease: {
    numberOfKeys: 1,
    lua: `${NOW}
${TOO_LATE}
if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX') then return 1 end
return 0`,
  },
  /**
   * renewLease: KEYS[1]; ARGV[1] owner, ARGV[2] TTL ms. Compare-and-extend in one step, so a lease
   * that expired and went to someone else stays theirs. 1 renewed, 0 not the owner's.
   */
  vncgateRenewLease: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`,
  },
  /** releaseLease: KEYS[1]; ARGV[1] owner. Deletes the lease only if it is still the owner's. */
  vncgateReleaseLease: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`,
  },
  /** acquireSlots: KEYS slot sets; ARGV[1] deadline, ARGV[2] owner, ARGV[3] limit, ARGV[4] TTL ms. 1 taken, BUSY refused. */
  vncgateSlots: {
    lua: `${NOW}
${TOO_LATE}
${SLOTS_FULL}
if slots_full(1, #KEYS, ARGV[2], tonumber(ARGV[3])) then return ${SCRIPT_REPLY.BUSY} end
take_slots(1, #KEYS, ARGV[2], tonumber(ARGV[4]))
return 1`,
  },
  /**
   * renewSlots: KEYS slot sets; ARGV[1] deadline, ARGV[2] owner, ARGV[3] TTL ms. Adds the owner
   * back if its lease lapsed (during an outage, or after a Redis restart without persistence): the
   * session is live, so it counts, even if that puts the set over its limit for a while.
   */
  vncgateRenewSlots: {
    lua: `${NOW}
${TOO_LATE}
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return 1`,
  },
  /** releaseSlots: KEYS slot sets; ARGV[1] owner. Late is harmless: the owner is gone either way. */
  vncgateReleaseSlots: {
    lua: `for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1`,
  },
  /**
   * countInvalid: KEYS[1] counter, KEYS[2] cool-down; ARGV[1] window ms, ARGV[2] allowed per
   * window, ARGV[3] cool-down ms. A fixed window started by the first invalid link; the one past
   * the allowance starts the cool-down and resets the count, so the address starts afresh after.
   */
  vncgateCountInvalid: {
    numberOfKeys: 2,
    lua: `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`,
  },
} as const satisfies Record<string, ScriptDefinition>;

export type ScriptName = keyof typeof SCRIPTS;
