import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { ResolvedTarget } from '../../target.js';
import { connectTarget, exchangeInit } from '../backend-connector.js';
import { backendClosed } from '../session-faults.js';
import type { SessionLimits } from '../session-types.js';
import { ShareHub } from './hub.js';
import { SharedViewer, type ViewerOptions } from './viewer.js';

export type ShareRegistryOptions = {
  /** Whether targets of this backend profile share one connection (`backends.profiles.NAME.sharing`). */
  sharing: (profile: string) => boolean;
  limits: Pick<SessionLimits, 'connectTimeoutMs' | 'handshakeTimeoutMs' | 'highWaterMarkBytes'> & { sharedViewerQueueBytes?: number };
  log: Logger;
};

/** What a shared session's log line and audit event add: it was shared, and whether it had control. */
export type ShareSummary = { viewersAtJoin: number; hadControl: boolean; controlMs: number; peakViewers: number };

const DEFAULT_VIEWER_QUEUE_BYTES = 16 * 1024 * 1024;

/** The same console: same address, port, profile (credentials) and tunnel. */
export function shareKey(t: ResolvedTarget): string {
  return JSON.stringify([t.host, t.port, t.profile, t.tunnelPath ?? null]);
}

/** One session's hold on a shared connection, from joining until the session ends. */
export class ShareMember {
  readonly hub: ShareHub;
  readonly viewersAtJoin: number;
  /** Its token says `control`: it takes control on joining. */
  readonly takeControl: boolean;
  #viewer: SharedViewer | null = null;
  #left = false;

  constructor(hub: ShareHub, takeControl: boolean) {
    this.hub = hub;
    this.takeControl = takeControl;
    this.viewersAtJoin = hub.viewers;
  }

  /** The session's piping: a viewer of the hub in place of a Relay. */
  pipe(ws: WebSocket, opts: Omit<ViewerOptions, 'takeControl'>): SharedViewer {
    this.#viewer = new SharedViewer(ws, this.hub, { ...opts, takeControl: this.takeControl });
    return this.#viewer;
  }

  /** Idempotent; the last member to leave closes the backend connection. */
  leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#viewer?.stop();
    this.hub.removeMember(this.#viewer);
  }

  summary(): ShareSummary {
    const v = this.#viewer;
    return { viewersAtJoin: this.viewersAtJoin, hadControl: v?.hadControl ?? false, controlMs: v?.controlMs ?? 0, peakViewers: this.hub.peakViewers };
  }
}

/**
 * The shared console connections of this process, one per console endpoint (shareKey) whose
 * profile has `sharing: true`. The first session for an endpoint opens the connection (connect,
 * RFB handshake, vncgate's own shared ClientInit); sessions arriving meanwhile wait for the same
 * one; a connection that failed is forgotten, so the next session tries again. Per process: see
 * README "Shared consoles" for a fleet of replicas.
 */
export class ShareRegistry {
  readonly #opts: ShareRegistryOptions;
  readonly #hubs = new Map<string, { opening: Promise<ShareHub>; hub: ShareHub | null }>();

  constructor(opts: ShareRegistryOptions) {
    this.#opts = opts;
  }

  /** Connections open or opening. */
  get size(): number {
    return this.#hubs.size;
  }

  sharing(target: ResolvedTarget): boolean {
    return this.#opts.sharing(target.profile);
  }

  async join(target: ResolvedTarget, onConnected?: () => void, takeControl = false): Promise<ShareMember> {
    const key = shareKey(target);
    // A connection that closed between its opening and this join is replaced once.
    for (let attempt = 0; attempt < 2; attempt++) {
      let entry = this.#hubs.get(key);
      if (entry === undefined) {
        const e: { opening: Promise<ShareHub>; hub: ShareHub | null } = { opening: this.#open(key, target, onConnected), hub: null };
        entry = e;
        this.#hubs.set(key, e);
        e.opening.then(
          (hub) => void (e.hub = hub),
          () => {
            if (this.#hubs.get(key) === e) this.#hubs.delete(key);
          },
        );
      } else onConnected?.();
      const hub = await entry.opening;
      if (hub.addMember()) return new ShareMember(hub, takeControl);
      if (this.#hubs.get(key) === entry) this.#hubs.delete(key);
    }
    throw backendClosed(false);
  }

  async #open(key: string, target: ResolvedTarget, onConnected?: () => void): Promise<ShareHub> {
    const { limits, log } = this.#opts;
    const hubLog = log.child({ component: 'share', target: target.label });
    // Not tied to the first session's abort: others may be waiting for the same connection.
    const conn = await connectTarget(target, limits, { log: hubLog, ...(onConnected ? { onConnected } : {}) });
    try {
      const r = await exchangeInit(conn, true, limits.handshakeTimeoutMs);
      const hub = new ShareHub(conn, r.init, r.trailing, {
        log: hubLog,
        highWaterMarkBytes: limits.highWaterMarkBytes,
        viewerQueueBytes: limits.sharedViewerQueueBytes ?? DEFAULT_VIEWER_QUEUE_BYTES,
        onClosed: (h) => {
          const e = this.#hubs.get(key);
          if (e !== undefined && e.hub === h) this.#hubs.delete(key);
        },
      });
      hubLog.info({ framebuffer: `${r.init.width}x${r.init.height}` }, 'shared console connection opened');
      return hub;
    } catch (err) {
      conn.socket.destroy();
      throw err;
    }
  }
}
