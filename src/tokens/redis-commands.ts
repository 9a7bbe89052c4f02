import type { Cluster, Redis } from 'ioredis';
import { timed, type UpstreamObserver } from '../observe/upstream.js';
import type { RedisLink } from './redis-link.js';
import { SCRIPT_REPLY, type ScriptName } from './redis-scripts.js';
import { storeUnavailable } from './token-store.js';

type Client = Redis | Cluster;
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;
export type PipelineLike = ReturnType<Client['pipeline']>;
export type ScriptPipeline = PipelineLike & Record<ScriptName, (...args: (string | number)[]) => PipelineLike>;

export type RedisCommandsOptions = {
  /** Replicas that must have a write before it counts (`WAIT`); 0: no waiting. */
  waitReplicas: number;
  waitTimeoutMs: number;
  /** What a guarded script may still act in (redis-clock.ts), less the WAIT. */
  scriptBudgetMs: number;
  observe: UpstreamObserver | undefined;
};

/**
 * How the token store sends a request: through the link (fail fast while disconnected), timed for
 * the upstream metric, every failure as TOKEN_ERR_STORE_UNAVAILABLE; scripts with a deadline in
 * Redis' clock (TOO_LATE: they changed nothing); and `WAIT` for replicas in the same pipeline.
 */
export class RedisCommands {
  readonly waitReplicas: number;
  readonly waitTimeoutMs: number;
  readonly #link: RedisLink;
  readonly #scriptBudgetMs: number;
  readonly #observe: UpstreamObserver | undefined;

  constructor(link: RedisLink, options: RedisCommandsOptions) {
    this.#link = link;
    this.waitReplicas = options.waitReplicas;
    this.waitTimeoutMs = options.waitTimeoutMs;
    this.#scriptBudgetMs = options.scriptBudgetMs;
    this.#observe = options.observe;
  }

  async run<T>(operation: string, command: (client: Client) => Promise<T>): Promise<T> {
    await this.#link.available(operation);
    try {
      return await timed(this.#observe, 'redis', () => command(this.#link.client));
    } catch (error) {
      throw storeUnavailable('redis', operation, error instanceof Error ? error.message : String(error), error);
    }
  }

  script(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return (this.#link.client as unknown as Record<ScriptName, ScriptCall>)[name](...args);
  }

  /** The Redis-clock deadline a guarded script sent now is given (scripts run with EVAL: redis-grants.ts). */
  deadline(): Promise<number> {
    return this.#link.clock.deadline(this.#scriptBudgetMs);
  }

  /**
   * Runs a deadline-guarded script: `keys` (with the key count first for variable-key scripts),
   * then the Redis-clock deadline, then `args`. TOO_LATE becomes TOKEN_ERR_STORE_UNAVAILABLE:
   * the script changed nothing.
   */
  async guarded(name: ScriptName, keys: (string | number)[], args: (string | number)[]): Promise<unknown> {
    const deadline = await this.#link.clock.deadline(this.#scriptBudgetMs);
    return this.#notTooLate(name, await this.script(name, ...keys, deadline, ...args));
  }

  #notTooLate(name: ScriptName, reply: unknown): unknown {
    if (reply === SCRIPT_REPLY.TOO_LATE) {
      throw new Error(`Redis ran the ${name} script after its ${this.#scriptBudgetMs} ms deadline; it changed nothing`);
    }
    return reply;
  }

  /**
   * `guarded`, followed in the same pipeline (same connection, same cluster node) by WAIT.
   * `acked`: replicas that have the script's writes, or null when waiting is off.
   */
  async guardedWithWait(name: ScriptName, keys: (string | number)[], args: (string | number)[]): Promise<{ reply: unknown; acked: number | null }> {
    if (this.waitReplicas === 0) return { reply: await this.guarded(name, keys, args), acked: null };
    const deadline = await this.#link.clock.deadline(this.#scriptBudgetMs);
    const p = this.#link.client.pipeline() as ScriptPipeline;
    p[name](...keys, deadline, ...args);
    const [[error, reply], acked] = await this.execWithWait(p);
    if (error !== null) throw error;
    return { reply: this.#notTooLate(name, reply), acked };
  }

  /**
   * Appends WAIT (when waiting is on) and runs the pipeline: the first command's [error, reply]
   * and the replicas that acknowledged (0 when WAIT failed), or null when waiting is off. WAIT
   * answers for every write this connection made before it, so it covers the command before it.
   */
  async execWithWait(p: PipelineLike): Promise<[[Error | null, unknown], number | null]> {
    if (this.waitReplicas > 0) p.wait(this.waitReplicas, this.waitTimeoutMs);
    const results = await p.exec();
    if (results === null || results.length === 0) throw new Error('pipeline was not executed');
    const first = results[0]!;
    if (this.waitReplicas === 0) return [first, null];
    const [waitError, acked] = results[results.length - 1]!;
    return [first, waitError === null && typeof acked === 'number' ? acked : 0];
  }

  checkReplicated(acked: number, operation: string): void {
    if (acked < this.waitReplicas) {
      throw new Error(`the ${operation} reached ${acked} of ${this.waitReplicas} Redis replicas within ${this.waitTimeoutMs} ms`);
    }
  }
}
