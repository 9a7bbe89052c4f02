import type { RedisCommands, ScriptPipeline } from './redis-commands.js';
import type { RedisKeys } from './redis-keys.js';
import { SCRIPT_REPLY } from './redis-scripts.js';
import { decodeGrant, encodeGrant, invalidGrant, type GrantBinding, type GrantRecord, type GrantRenewal, type GrantStore } from './grant.js';
import { storeUnavailable } from './token-store.js';

/** Script answers of the grant consume that are refusals (after TOO_LATE and the others in redis-scripts.ts). */
const WRONG_KEY = -4;
const WRONG_CLIENT = -5;

/**
 * The grant scripts, run with EVAL (a reconnect is rare; the scripts are short). KEYS[1] is the
 * grant, a Redis hash: `rec` (JSON record), `client` (address hash or ''), `key` (page key hash);
 * KEYS[2], where given, its used mark (same hash tag, so one cluster slot).
 */
const LUA = {
  /** KEYS[1], KEYS[2]; ARGV[1] record, ARGV[2] client, ARGV[3] key, ARGV[4] TTL ms. */
  mint: `redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'client', ARGV[2], 'key', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`,
  /** KEYS[1], KEYS[2]; ARGV[1] TTL ms. 1 renewed, 2 used by a reconnect, 0 gone. */
  renew: `if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
return 0`,
  /** KEYS[1]; ARGV[1] grace ms, or '' to delete. */
  end: `if ARGV[1] == '' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[1])`,
  /**
   * KEYS[1], KEYS[2]; ARGV[1] deadline (Redis clock), ARGV[2] client hash, ARGV[3] key hash, ARGV[4]
   * used mark TTL ms. The record, or
   * nil (unknown), WRONG_KEY, WRONG_CLIENT (left in place: a stolen grant presented from elsewhere
   * does not burn the user's), TOO_LATE (changed nothing). Compares digests, never secrets.
   */
  consume: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(ARGV[1]) then return ${SCRIPT_REPLY.TOO_LATE} end
local h = redis.call('HMGET', KEYS[1], 'rec', 'client', 'key')
if not h[1] then return nil end
if h[3] ~= ARGV[3] then return ${WRONG_KEY} end
if h[2] ~= '' and h[2] ~= ARGV[2] then return ${WRONG_CLIENT} end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
return h[1]`,
} as const;

/**
 * Reconnect grants in the token store's Redis (same connection, same fail-fast rules). A consume is
 * waited for like a token's (`WAIT`) when replicas are configured; one not replicated in time is
 * refused and not put back (at most once: the user then needs a new link, never gets two sessions).
 */
export class RedisGrantStore implements GrantStore {
  readonly #cmd: RedisCommands;
  readonly #keys: RedisKeys;

  constructor(commands: RedisCommands, keys: RedisKeys) {
    this.#cmd = commands;
    this.#keys = keys;
  }

  async mint(secret: string, record: GrantRecord, binding: GrantBinding, ttlMs: number): Promise<void> {
    const k = this.#keys;
    await this.#cmd.run('grant', (c) => c.eval(LUA.mint, 2, k.grant(secret), k.grantUsed(secret), encodeGrant(record), binding.client, binding.key, ms(ttlMs)));
  }

  async renew(secret: string, ttlMs: number): Promise<GrantRenewal> {
    const k = this.#keys;
    const r = await this.#cmd.run('grant', (c) => c.eval(LUA.renew, 2, k.grant(secret), k.grantUsed(secret), ms(ttlMs)));
    return r === 1 ? 'held' : r === 2 ? 'used' : 'lost';
  }

  async end(secret: string, graceMs: number | null): Promise<void> {
    await this.#cmd.run('grant', (c) => c.eval(LUA.end, 1, this.#keys.grant(secret), graceMs === null ? '' : ms(graceMs)));
  }

  async consume(secret: string, binding: GrantBinding, usedMarkMs: number): Promise<GrantRecord> {
    const cmd = this.#cmd;
    const { reply, acked } = await cmd.run('grant', async (c) => {
      const deadline = await cmd.deadline();
      const p = c.pipeline() as ScriptPipeline;
      p.eval(LUA.consume, 2, this.#keys.grant(secret), this.#keys.grantUsed(secret), deadline, binding.client, binding.key, ms(usedMarkMs));
      const [[error, r], waited] = await cmd.execWithWait(p);
      if (error !== null) throw error;
      if (r === SCRIPT_REPLY.TOO_LATE) throw new Error('Redis ran the grant consume after its deadline; it changed nothing');
      return { reply: r, acked: waited };
    });
    if (reply === null) throw invalidGrant('unknown');
    if (reply === WRONG_KEY) throw invalidGrant('wrong-key');
    if (reply === WRONG_CLIENT) throw invalidGrant('wrong-client');
    if (typeof reply !== 'string') throw storeUnavailable('redis', 'grant', `unexpected reply from Redis (${typeof reply})`);
    if (acked !== null && acked < cmd.waitReplicas) {
      throw storeUnavailable('redis', 'grant', `the grant consume reached ${acked} of ${cmd.waitReplicas} Redis replicas within ${cmd.waitTimeoutMs} ms; refused`);
    }
    const record = decodeGrant(reply);
    if (record === null) throw invalidGrant('corrupt');
    return record;
  }
}

/** A duration for Redis: whole milliseconds, at least 1. */
function ms(value: number): number {
  return Math.max(1, Math.round(value));
}
