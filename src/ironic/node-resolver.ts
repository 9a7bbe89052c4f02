import { timingSafeEqual } from 'node:crypto';
import { VncgateError } from '../errors.js';
import { normalizeHost, type BackendSecurity, type ResolvedTarget } from '../target.js';
import { abortableSleep, type IronicClient, type NodeConsoleFields } from './client.js';

/** Which backend profile a node's console gets, most specific first. */
export type IronicProfileRules = {
  defaultProfile: string;
  byNode: Readonly<Record<string, string>>;
  byConsoleInterface: Readonly<Record<string, string>>;
  byDriver: Readonly<Record<string, string>>;
};

export type IronicResolverOptions = {
  /** Enable a disabled console (vncgate tokens only), then wait for it. */
  autoEnable: boolean;
  enableTimeoutMs: number;
  rules: IronicProfileRules;
  profiles: ReadonlyMap<string, BackendSecurity>;
};

export type ResolvedNode = ResolvedTarget & { uuid: string };

/** The token and node inside Ironic's console URL: `…?path=websockify%3Fnode%3D<uuid>%26token%3D<t>` (§A.4). */
export function parseIronicConsoleUrl(url: string): { node: string; token: string } | null {
  try {
    const path = new URL(url).searchParams.get('path');
    if (!path) return null;
    const q = path.indexOf('?');
    const params = new URLSearchParams(q === -1 ? '' : path.slice(q + 1));
    const node = params.get('node');
    const token = params.get('token');
    return node && token ? { node, token } : null;
  } catch {
    return null;
  }
}

/** Constant-time string equality; unequal lengths still cost a comparison. */
export function secretEquals(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * Resolves an Ironic node to its VNC endpoint at connect time, from the node's *current* state:
 * the console must be enabled and graphical (`console_info.type == "vnc"`), and the endpoint is
 * `driver_internal_info.vnc_host`/`vnc_port`. Every refusal names the node and says what to do.
 */
export class IronicNodeResolver {
  readonly #client: IronicClient;
  readonly #opts: IronicResolverOptions;

  constructor(client: IronicClient, opts: IronicResolverOptions) {
    this.#client = client;
    this.#opts = opts;
  }

  /** For vncgate's own `{node}` tokens: the console may be enabled on demand. */
  async resolve(node: string, signal: AbortSignal): Promise<ResolvedNode> {
    let state = await this.#client.getConsole(node, signal);
    if (!state.enabled) {
      await this.#refuseNoConsole(node, signal);
      if (!this.#opts.autoEnable) throw disabled(node);
      await this.#client.setConsole(node, true, signal);
      const until = Date.now() + this.#opts.enableTimeoutMs;
      for (let delay = 250; !state.enabled; delay = Math.min(delay * 2, 2_000)) {
        if (Date.now() + delay > until) {
          throw new VncgateError('IRONIC_ERR_ENABLE_FAILED', `console of node ${node} not enabled within ${this.#opts.enableTimeoutMs} ms`, {
            publicReason: `The console of node ${node} could not be enabled in time - try again, or ask the operator to check the node`,
          });
        }
        await abortableSleep(delay, signal);
        state = await this.#client.getConsole(node, signal);
      }
    }
    requireVnc(node, state.info?.type ?? null);
    return this.#endpoint(node, signal);
  }

  /**
   * For Ironic's own console URLs (drop-in for ironic-novncproxy): the presented token must equal,
   * in constant time, the one in the node's current console URL. A token from before a disable or
   * re-enable is therefore refused. Never enables a console.
   */
  async resolveWithIronicToken(node: string, token: string, signal: AbortSignal): Promise<ResolvedNode> {
    const state = await this.#client.getConsole(node, signal);
    if (!state.enabled) {
      await this.#refuseNoConsole(node, signal);
      throw new VncgateError('TOKEN_ERR_INVALID', `console of node ${node} is disabled; its console URL is void`, {
        publicReason: 'This console link has expired - the console was disabled; request a new link',
      });
    }
    requireVnc(node, state.info?.type ?? null);
    const current = state.info?.url ? parseIronicConsoleUrl(state.info.url) : null;
    if (!current) throw new VncgateError('IRONIC_ERR_BAD_RESPONSE', `console URL of node ${node} carries no token`);
    const nodeMatches = current.node === node;
    const tokenMatches = secretEquals(token, current.token);
    if (!tokenMatches) {
      throw new VncgateError('TOKEN_ERR_INVALID', `Ironic console token for node ${node} does not match the current one`, {
        publicReason: 'This console link has expired or was replaced - request a new one',
      });
    }
    const resolved = await this.#endpoint(node, signal);
    // The URL names the node by UUID; a link naming it otherwise must still be that node.
    if (!nodeMatches && resolved.uuid !== current.node) {
      throw new VncgateError('TOKEN_ERR_INVALID', `console token of node ${current.node} presented for node ${node}`);
    }
    return resolved;
  }

  /**
   * Real Ironic answers a `no-console` node's GET with a plain "disabled" (200, console_info null);
   * telling the user to enable it would be wrong, so look at the interface first.
   */
  async #refuseNoConsole(node: string, signal: AbortSignal): Promise<void> {
    const f = await this.#client.getNodeConsoleFields(node, signal);
    if (f.consoleInterface === 'no-console') {
      throw new VncgateError('IRONIC_ERR_CONSOLE_TYPE', `node ${node} has console_interface no-console`, {
        details: { consoleInterface: 'no-console' },
        publicReason: `Node ${node} has no console (console_interface no-console) - the operator must set a graphical console_interface (e.g. redfish-graphical)`,
      });
    }
  }

  async #endpoint(node: string, signal: AbortSignal): Promise<ResolvedNode> {
    const f = await this.#client.getNodeConsoleFields(node, signal);
    if (f.vncHost === null || f.vncPort === null) {
      throw new VncgateError('IRONIC_ERR_NO_ENDPOINT', `node ${node} has no driver_internal_info.vnc_host/vnc_port`, {
        publicReason: `The console of node ${node} has no VNC address yet - try again shortly`,
      });
    }
    const profile = this.#profileFor(f);
    const security = this.#opts.profiles.get(profile);
    if (!security) throw new VncgateError('CONFIG_ERR_INVALID', `Ironic profile rule names unknown profile ${profile}`);
    const host = normalizeHost(f.vncHost);
    const label = `node ${f.uuid} (${host.includes(':') ? `[${host}]` : host}:${f.vncPort})`;
    return { host, port: f.vncPort, security, profile, label, uuid: f.uuid };
  }

  #profileFor(f: NodeConsoleFields): string {
    const r = this.#opts.rules;
    return (
      r.byNode[f.uuid] ??
      (f.name !== null ? r.byNode[f.name] : undefined) ??
      (f.consoleInterface !== null ? r.byConsoleInterface[f.consoleInterface] : undefined) ??
      (f.driver !== null ? r.byDriver[f.driver] : undefined) ??
      r.defaultProfile
    );
  }
}

function disabled(node: string): VncgateError {
  return new VncgateError('IRONIC_ERR_CONSOLE_DISABLED', `console of node ${node} is disabled`, {
    publicReason: `The console of node ${node} is not enabled - enable it (baremetal node console enable) and request a new link`,
  });
}

function requireVnc(node: string, type: string | null): void {
  if (type === 'vnc') return;
  throw new VncgateError('IRONIC_ERR_CONSOLE_TYPE', `console of node ${node} is of type ${type ?? 'none'}, not vnc`, {
    details: { consoleType: type },
    publicReason: `Node ${node} has a ${type ?? 'non-graphical'} console, not a graphical one - the operator must set a graphical console_interface (e.g. redfish-graphical)`,
  });
}
