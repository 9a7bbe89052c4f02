import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SignJWT } from 'jose';
import { createTokenStore, type TokenStore } from '../../src/tokens/index.js';
import { LoadError } from './load-error.js';

/** Where console tokens come from: fresh and single-use, one per session, minted ahead in batches. */
export interface TokenSource {
  readonly kind: 'api' | 'redis' | 'none';
  /** The most tokens this run will take; none are minted beyond it. */
  plan(total: number): void;
  /** Mints until `count` unused tokens are queued (one request per 1000); for the untimed warm-up. */
  prefill(count: number): Promise<void>;
  /** One unused token (null for `none`); refills in the background when the queue runs low. */
  take(): Promise<string | null>;
  stats(): { minted: number; mintMs: number; requests: number };
  close(): Promise<void>;
}

/** What every token is for: the console endpoint as vncgate will dial it. */
export type TokenTarget = { host: string; port: number; profile?: string | undefined };

/** POST /v1/console-tokens and the store's issueMany take at most this many per call. */
const BATCH = 1000;

abstract class BatchTokenSource implements TokenSource {
  abstract readonly kind: 'api' | 'redis';
  #queue: string[] = [];
  #head = 0;
  #refill: Promise<void> | null = null;
  #error: LoadError | null = null;
  #minted = 0;
  #mintMs = 0;
  #requests = 0;
  #planned = Number.POSITIVE_INFINITY;
  /** Refill below this many queued tokens. */
  lowWater = 256;

  protected abstract mint(count: number): Promise<string[]>;

  get #queued(): number {
    return this.#queue.length - this.#head;
  }

  /** How many more tokens a batch may hold without minting past the plan. */
  get #batch(): number {
    return Math.max(0, Math.min(BATCH, this.#planned - this.#minted));
  }

  plan(total: number): void {
    this.#planned = total;
  }

  async prefill(count: number): Promise<void> {
    const want = Math.min(count, this.#planned - this.#minted + this.#queued);
    while (this.#queued < want) await this.#mintBatch(Math.min(BATCH, want - this.#queued));
  }

  async take(): Promise<string> {
    // Minting ahead in the background only while the run will still need more tokens than are
    // queued (a soak); a run whose tokens were all minted up front mints nothing while timed.
    if (this.#queued <= this.lowWater && !this.#refill && this.#batch > 0) {
      this.#refill = this.#mintBatch(this.#batch).then(
        () => void (this.#refill = null),
        (err: unknown) => {
          this.#refill = null;
          this.#error = err instanceof LoadError ? err : new LoadError('token-mint', String(err));
        },
      );
    }
    while (this.#queued === 0) {
      if (this.#error) {
        const e = this.#error;
        this.#error = null;
        throw e;
      }
      if (!this.#refill) {
        if (this.#batch === 0) throw new LoadError('token-plan', `all ${this.#planned} planned tokens were taken`);
        this.#refill = this.#mintBatch(this.#batch).finally(() => void (this.#refill = null));
      }
      await this.#refill;
    }
    const t = this.#queue[this.#head++]!;
    // Drop the consumed front now and then, so the queue does not grow for ever in a soak.
    if (this.#head > 4096) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return t;
  }

  stats(): { minted: number; mintMs: number; requests: number } {
    return { minted: this.#minted, mintMs: this.#mintMs, requests: this.#requests };
  }

  async close(): Promise<void> {
    await this.#refill?.catch(() => {});
  }

  async #mintBatch(n: number): Promise<void> {
    const t0 = performance.now();
    this.#requests++;
    const tokens = await this.mint(n);
    this.#mintMs += performance.now() - t0;
    this.#minted += tokens.length;
    for (const t of tokens) this.#queue.push(t);
  }
}

export type ApiTokenSourceOptions = {
  /** vncgate's base URL: https://host:port (the token API is at /v1/console-tokens). */
  apiUrl: string;
  jwtSecret: Uint8Array;
  issuer: string;
  audience: string;
  target: TokenTarget;
  ttlSeconds: number;
  ca?: Buffer | string | undefined;
  rejectUnauthorized?: boolean | undefined;
  timeoutMs?: number | undefined;
};

/** Mints through vncgate's token API with an HS256 bearer JWT, as an orchestrator would. */
export class ApiTokenSource extends BatchTokenSource {
  readonly kind = 'api' as const;
  readonly #opts: ApiTokenSourceOptions;
  #jwt: { value: string; renewAt: number } | null = null;

  constructor(opts: ApiTokenSourceOptions) {
    super();
    this.#opts = opts;
  }

  protected async mint(count: number): Promise<string[]> {
    const o = this.#opts;
    const body = JSON.stringify({ target: { host: o.target.host, port: o.target.port }, ...(o.target.profile ? { profile: o.target.profile } : {}), ttlSeconds: o.ttlSeconds, count });
    const { status, text } = await this.#post('/v1/console-tokens', body, await this.#bearer());
    if (status !== 201) {
      let code = '';
      try {
        code = ` ${String((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '')}`;
      } catch {
        // the status alone
      }
      throw new LoadError(`token-api-${status}${code.trimEnd()}`, `token API answered ${status}: ${text.slice(0, 300)}`);
    }
    const issued = JSON.parse(text) as { token: string }[];
    return issued.map((t) => t.token);
  }

  async #bearer(): Promise<string> {
    const now = Date.now();
    if (!this.#jwt || now >= this.#jwt.renewAt) {
      const value = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(this.#opts.issuer)
        .setAudience(this.#opts.audience)
        .setSubject('vncgate-loadtest')
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(this.#opts.jwtSecret);
      this.#jwt = { value, renewAt: now + 30 * 60_000 };
    }
    return this.#jwt.value;
  }

  #post(path: string, body: string, bearer: string): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.#opts.apiUrl);
    const secure = url.protocol === 'https:';
    const timeoutMs = this.#opts.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          ...(secure ? { rejectUnauthorized: this.#opts.rejectUnauthorized ?? true, ...(this.#opts.ca !== undefined ? { ca: this.#opts.ca } : {}) } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
          res.on('error', (err) => reject(new LoadError('token-api-transport', err.message)));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new LoadError(`token-api-${(err as NodeJS.ErrnoException).code ?? 'transport'}`, err.message)));
      req.end(body);
    });
  }
}

export type RedisTokenSourceOptions = { redisUrl: string; keyPrefix?: string | undefined; target: TokenTarget; ttlSeconds: number };

/** Writes tokens straight into the Redis that vncgate consumes from (as `vncgate token create` does). */
export class RedisTokenSource extends BatchTokenSource {
  readonly kind = 'redis' as const;
  readonly #store: TokenStore;
  readonly #opts: RedisTokenSourceOptions;

  constructor(opts: RedisTokenSourceOptions) {
    super();
    this.#opts = opts;
    this.#store = createTokenStore({ redisUrl: opts.redisUrl, keyPrefix: opts.keyPrefix, connectionName: 'vncgate-loadtest', commandTimeoutMs: 10_000 });
  }

  protected async mint(count: number): Promise<string[]> {
    const t = this.#opts.target;
    try {
      await this.#store.ready();
      const issued = await this.#store.issueMany({ kind: 'static', host: t.host, port: t.port, ...(t.profile ? { profile: t.profile } : {}) }, this.#opts.ttlSeconds, count);
      return issued.map((i) => i.token);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERROR';
      throw new LoadError(`token-redis ${code}`, (err as Error).message);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#store.close();
  }
}

/** Direct TCP to the VNC server: no proxy, no token. */
export class NoTokenSource implements TokenSource {
  readonly kind = 'none' as const;
  plan(): void {}
  async prefill(): Promise<void> {}
  async take(): Promise<null> {
    return null;
  }
  stats(): { minted: number; mintMs: number; requests: number } {
    return { minted: 0, mintMs: 0, requests: 0 };
  }
  async close(): Promise<void> {}
}
