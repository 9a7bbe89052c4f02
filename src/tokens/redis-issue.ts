import type { Redis } from 'ioredis';
import { VncgateError } from '../errors.js';
import { encodeRecord, type TokenRecord } from './record.js';
import type { RedisCommands } from './redis-commands.js';
import type { RedisKeys } from './redis-keys.js';
import { storeUnavailable } from './token-store.js';

type NewToken = { token: string; record: TokenRecord };

/**
 * Stores freshly issued tokens, each with its TTL, replicated to `waitReplicas` replicas before it
 * counts. NX because overwriting a live token would silently retarget it; with 256 random bits a
 * collision means a broken RNG, which deserves a loud failure.
 */
export async function storeNewTokens(cmd: RedisCommands, keys: RedisKeys, cluster: boolean, batch: NewToken[], ttlMs: number): Promise<void> {
  const replies = cluster ? await onCluster(cmd, keys, batch, ttlMs) : await inTransaction(cmd, keys, batch, ttlMs);
  for (const [error, reply] of replies) {
    if (error !== null) throw storeUnavailable('redis', 'issue', error.message, error);
    if (reply !== 'OK') throw new VncgateError('INTERNAL_ERR', 'a freshly generated token already existed in Redis');
  }
}

/** MULTI/EXEC: one round trip, and either every SET runs or (connection lost before EXEC) none. */
async function inTransaction(cmd: RedisCommands, keys: RedisKeys, batch: NewToken[], ttlMs: number): Promise<[Error | null, unknown][]> {
  const replies = await cmd.run('issue', async (client) => {
    const tx = client.multi();
    for (const { token, record } of batch) tx.set(keys.token(token), encodeRecord(record), 'PX', ttlMs, 'NX');
    const result = await tx.exec();
    if (cmd.waitReplicas > 0) cmd.checkReplicated(await (client as Redis).wait(cmd.waitReplicas, cmd.waitTimeoutMs), 'issue');
    return result;
  });
  if (replies === null || replies.length !== batch.length) throw storeUnavailable('redis', 'issue', 'transaction was not executed');
  return replies;
}

/**
 * One pipeline per token (tokens hash to different slots, so there is no transaction across
 * them): some may be stored when the call fails; nobody knows them, and they expire.
 */
function onCluster(cmd: RedisCommands, keys: RedisKeys, batch: NewToken[], ttlMs: number): Promise<[Error | null, unknown][]> {
  return cmd.run('issue', (client) =>
    Promise.all(
      batch.map(async ({ token, record }) => {
        const p = client.pipeline().set(keys.token(token), encodeRecord(record), 'PX', ttlMs, 'NX');
        const [set, acked] = await cmd.execWithWait(p);
        if (acked !== null) cmd.checkReplicated(acked, 'issue');
        return set;
      }),
    ),
  );
}
