import type { RedisCommands } from './redis-commands.js';
import type { RedisKeys } from './redis-keys.js';
import { checkSlotRequest, INVALID_WINDOW_MS, storeUnavailable, type SlotRequest } from './token-store.js';

/**
 * What the Redis token store keeps besides tokens, for the limits of issue 15 shared across
 * replicas: single-use claims of Nova/Ironic console links, one-session leases, session slots
 * per target, and invalid-link counting per client address (redis-scripts.ts for the scripts).
 * Leases and slots are not waited for (`WAIT`): a lost slot is taken again by the next renewal.
 */
export class RedisLimits {
  readonly #cmd: RedisCommands;
  readonly #keys: RedisKeys;

  constructor(commands: RedisCommands, keys: RedisKeys) {
    this.#cmd = commands;
    this.#keys = keys;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const cmd = this.#cmd;
    const claimKey = this.#keys.lease('used', key);
    const { reply, acked } = await cmd.run('claim', () => cmd.guardedWithWait('vncgateClaim', [claimKey], [Math.max(1, Math.round(ttlMs))]));
    if (reply === 1 && acked !== null && acked < cmd.waitReplicas) {
      // As a consume: the caller is refused, so the claim is taken back (nobody else can hold it).
      await cmd.run('claim', (c) => c.del(claimKey)).catch(() => undefined);
      throw storeUnavailable('redis', 'claim', `the claim reached ${acked} of ${cmd.waitReplicas} Redis replicas within ${cmd.waitTimeoutMs} ms; not used`);
    }
    return reply === 1;
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#cmd.run('lease', () => this.#cmd.guarded('vncgateLease', [this.#keys.lease('lease', key)], [owner, Math.max(1, Math.round(ttlMs))]));
    return reply === 1;
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#cmd.run('lease', () => this.#cmd.script('vncgateRenewLease', this.#keys.lease('lease', key), owner, Math.max(1, Math.round(ttlMs))));
    return reply === 1;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.#cmd.run('lease', () => this.#cmd.script('vncgateReleaseLease', this.#keys.lease('lease', key), owner));
  }

  async acquireSlots(request: SlotRequest): Promise<boolean> {
    checkSlotRequest(request);
    const keys = request.keys.map((k) => this.#keys.slot(k));
    const reply = await this.#cmd.run('slots', () =>
      this.#cmd.guarded('vncgateSlots', [keys.length, ...keys], [request.owner, request.limit, Math.max(1, Math.round(request.ttlMs))]),
    );
    return reply === 1;
  }

  async renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void> {
    const slotKeys = keys.map((k) => this.#keys.slot(k));
    await this.#cmd.run('slots', () => this.#cmd.guarded('vncgateRenewSlots', [slotKeys.length, ...slotKeys], [owner, Math.max(1, Math.round(ttlMs))]));
  }

  async releaseSlots(keys: readonly string[], owner: string): Promise<void> {
    const slotKeys = keys.map((k) => this.#keys.slot(k));
    await this.#cmd.run('slots', () => this.#cmd.script('vncgateReleaseSlots', slotKeys.length, ...slotKeys, owner));
  }

  async coolingDown(client: string): Promise<boolean> {
    return (await this.#cmd.run('rate', (c) => c.exists(this.#keys.cool(client)))) === 1;
  }

  async countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean> {
    const reply = await this.#cmd.run('rate', () =>
      this.#cmd.script('vncgateCountInvalid', this.#keys.bad(client), this.#keys.cool(client), INVALID_WINDOW_MS, allowedPerMinute, Math.max(1, Math.round(cooldownMs))),
    );
    return reply === 1;
  }
}
