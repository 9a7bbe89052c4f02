import { LoadSession } from '../loadtest/index.js';
import { toLoadError } from '../loadtest/load-error.js';
import { AddressPool, closedOrAfter, failureKey, newConnInfo, soakConnector, type TokenMinter } from './client.js';
import { sleep } from './procs.js';

/**
 * The traffic of the soak: console sessions opened through HAProxy, each with a token minted for
 * it just before; long-lived ones held until the end, short ones closed after a few seconds;
 * every open session asks for a framebuffer update now and then and checks its pixels. Alongside,
 * a replay lane presents tokens that were already accepted: every one must be refused.
 */
export type SessionKind = 'long' | 'short';

export type SessionRecord = {
  readonly id: number;
  readonly kind: SessionKind;
  readonly addr: string;
  /** performance.now() times, ms. */
  readonly startedAt: number;
  /** The token in hand, the connection begun. */
  connectAt: number | null;
  openedAt: number | null;
  endedAt: number | null;
  /** failed: never opened (error says why); lost: ended by the other side (lostError says how). */
  state: 'minting' | 'opening' | 'open' | 'closed' | 'failed' | 'lost';
  error: string | null;
  lostError: string | null;
  cert: string | null;
  updates: number;
  token: string | null;
};

export type ChurnOptions = {
  wsUrl: string;
  ca: string;
  minter: TokenMinter;
  longLived: number;
  /** New short sessions per second. */
  rate: number;
  shortLifeMs: readonly [number, number];
  /** Pause between two update requests of one session. */
  updateEveryMs: number;
  openTimeoutMs: number;
  /** Replays of accepted tokens per second while churning. */
  replayRate: number;
  maxSessions: number;
  log: (msg: string) => void;
};

export class Churn {
  readonly records: SessionRecord[] = [];
  /** Token → times a console session was opened with it. */
  readonly accepted = new Map<string, number>();
  /** Replays during the churn (events included), and after it, once the fleet has settled. */
  readonly replays = { tried: 0, refused: {} as Record<string, number>, accepted: 0 };
  readonly finalReplays = { tried: 0, refused: {} as Record<string, number>, accepted: 0 };
  readonly #opts: ChurnOptions;
  readonly #addresses = new AddressPool(100);
  readonly #replayAddresses = new AddressPool(150);
  readonly #live = new Set<Promise<void>>();
  #stopping = false;
  #loops: Promise<void>[] = [];

  constructor(opts: ChurnOptions) {
    this.#opts = opts;
  }

  /** Opens the long-lived sessions (a few at a time), then starts the short ones and the replays. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#opts.longLived; i += 10) {
      const batch = Array.from({ length: Math.min(10, this.#opts.longLived - i) }, () => this.#spawn('long'));
      await Promise.all(batch.map((b) => b.opened));
    }
    this.#loops = [this.#shortLoop(), this.#replayLoop()];
  }

  /** Stops new sessions and replays, closes every open session politely and waits for all of them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
    // Each session's loop sees the flag after its current update and closes politely itself.
    await Promise.allSettled([...this.#live]);
  }

  openCount(kind?: SessionKind): number {
    return this.records.filter((r) => r.state === 'open' && (kind === undefined || r.kind === kind)).length;
  }

  /** Presents an accepted token again; resolves with the failure key (an acceptance is counted). */
  async replay(token: string, tally = this.replays): Promise<string> {
    tally.tried++;
    const info = newConnInfo();
    const s = new LoadSession({
      connect: soakConnector({ url: `${this.#opts.wsUrl}?token=${encodeURIComponent(token)}`, ca: this.#opts.ca, localAddress: this.#replayAddresses.take(), timeoutMs: this.#opts.openTimeoutMs, info }),
      security: ['none'],
      setupTimeoutMs: this.#opts.openTimeoutMs,
      updateTimeoutMs: 10_000,
      verify: true,
    });
    try {
      await s.open();
      tally.accepted++;
      this.accepted.set(token, (this.accepted.get(token) ?? 0) + 1);
      await s.close();
      return 'accepted';
    } catch (err) {
      await closedOrAfter(info, 1_500);
      const key = failureKey(err, info);
      tally.refused[key] = (tally.refused[key] ?? 0) + 1;
      return key;
    }
  }

  async #shortLoop(): Promise<void> {
    const every = 1000 / this.#opts.rate;
    let next = performance.now();
    while (!this.#stopping && this.records.length < this.#opts.maxSessions) {
      this.#spawn('short');
      next += every;
      await sleep(Math.max(0, next - performance.now()));
    }
  }

  async #replayLoop(): Promise<void> {
    if (this.#opts.replayRate <= 0) return;
    while (!this.#stopping) {
      await sleep(1000 / this.#opts.replayRate);
      const used = [...this.accepted.keys()];
      const token = used[Math.floor(Math.random() * used.length)];
      if (token !== undefined) await this.replay(token);
    }
  }

  #spawn(kind: SessionKind): { opened: Promise<void> } {
    const rec: SessionRecord = {
      id: this.records.length,
      kind,
      addr: this.#addresses.take(),
      startedAt: performance.now(),
      connectAt: null,
      openedAt: null,
      endedAt: null,
      state: 'minting',
      error: null,
      lostError: null,
      cert: null,
      updates: 0,
      token: null,
    };
    this.records.push(rec);
    let markOpened: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (markOpened = resolve));
    const life = this.#life(rec, markOpened).finally(markOpened);
    this.#live.add(life);
    void life.finally(() => this.#live.delete(life));
    return { opened };
  }

  async #life(rec: SessionRecord, opened: () => void): Promise<void> {
    const o = this.#opts;
    try {
      rec.token = await o.minter.mint();
    } catch (err) {
      rec.state = 'failed';
      rec.error = failureKey(err, null);
      rec.endedAt = performance.now();
      return;
    }
    rec.state = 'opening';
    rec.connectAt = performance.now();
    const info = newConnInfo();
    const s = new LoadSession({
      connect: soakConnector({ url: `${o.wsUrl}?token=${encodeURIComponent(rec.token)}`, ca: o.ca, localAddress: rec.addr, timeoutMs: o.openTimeoutMs, info }),
      security: ['none'],
      setupTimeoutMs: o.openTimeoutMs,
      updateTimeoutMs: 15_000,
      verify: true,
    });
    try {
      await s.open();
    } catch (err) {
      rec.endedAt = performance.now();
      await closedOrAfter(info, 1_500);
      rec.state = 'failed';
      rec.error = failureKey(err, info);
      rec.cert = info.cert;
      return;
    }
    rec.state = 'open';
    rec.openedAt = performance.now();
    rec.cert = info.cert;
    this.accepted.set(rec.token, (this.accepted.get(rec.token) ?? 0) + 1);
    opened();
    let lost: unknown = null;
    s.onUnexpectedEnd = (e) => (lost ??= e);
    const [lo, hi] = o.shortLifeMs;
    const until = rec.kind === 'short' ? rec.openedAt + lo + Math.random() * (hi - lo) : Number.POSITIVE_INFINITY;
    try {
      while (!this.#stopping && performance.now() < until && lost === null && !s.ended) {
        await s.pingpong(performance.now() + 60_000, [], 1);
        rec.updates++;
        await sleep(o.updateEveryMs * (0.5 + Math.random()));
      }
    } catch (err) {
      lost ??= err;
    }
    if (lost !== null) {
      rec.state = 'lost';
      rec.lostError = failureKey(toLoadError(lost), info);
    } else {
      await s.close(3_000);
      rec.state = 'closed';
    }
    rec.endedAt = performance.now();
  }
}
