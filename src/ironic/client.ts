import { VncgateError } from '../errors.js';
import type { UpstreamObserver } from '../observe/upstream.js';
import { abortableSleep, httpJson, isKeystoneTransient, isTransportFailure, parseJsonBody, retryDelayMs, type HttpResponse, type KeystoneSession, type OpenStackService } from '../openstack/index.js';
import { ironicFault } from './fault.js';

/** How the OpenStack client names Ironic: its metric label and failure codes. */
const IRONIC: OpenStackService = { service: 'ironic', unreachable: 'IRONIC_ERR_UNREACHABLE', timeout: 'IRONIC_ERR_TIMEOUT', badResponse: 'IRONIC_ERR_BAD_RESPONSE' };

/**
 * Microversions, each the lowest that gives what that call reads (openstack-consoles.md §A.2):
 * 1.5 lets a node be addressed by name; 1.31 shows `console_interface` (and `fields=` from 1.8,
 * `driver_internal_info` from 1.3).
 */
export const IRONIC_MICROVERSION = { console: '1.5', nodeFields: '1.31' } as const;

export type IronicAuth =
  | { type: 'none' }
  | { type: 'http_basic'; username: string; password: string }
  | { type: 'keystone'; session: KeystoneSession };

export type IronicClientOptions = {
  /** API root, e.g. http://ironic:6385 (with keystone: overrides the catalog endpoint). */
  url: string | null;
  auth: IronicAuth;
  ca?: Buffer;
  timeoutMs: number;
  /** Extra attempts for GETs after a transport error, a timeout or a 5xx (never for PUT). */
  retries: number;
  signal?: AbortSignal;
  /** Told each request's duration (the upstream metric). */
  observe?: UpstreamObserver | undefined;
};

export type ConsoleState = { enabled: boolean; info: { type: string; url: string | null } | null };

export type NodeConsoleFields = {
  uuid: string;
  name: string | null;
  driver: string | null;
  consoleInterface: string | null;
  consoleEnabled: boolean;
  vncHost: string | null;
  vncPort: number | null;
};

/** Node identifiers Ironic accepts: a UUID or a name of RFC 3986 unreserved characters (§A.2). */
const NODE_IDENT = /^[A-Za-z0-9\-._~]{1,255}$/;

export class IronicClient {
  readonly #opts: IronicClientOptions;

  constructor(opts: IronicClientOptions) {
    if (opts.url === null && opts.auth.type !== 'keystone') {
      throw new VncgateError('IRONIC_ERR_NOT_CONFIGURED', 'the Ironic API URL is required unless Keystone provides it');
    }
    this.#opts = opts;
  }

  async getConsole(node: string, signal?: AbortSignal): Promise<ConsoleState> {
    const res = await this.#call('GET', `/v1/nodes/${ident(node)}/states/console`, IRONIC_MICROVERSION.console, undefined, signal);
    this.#check(res, node, 'read the console state');
    const doc = parseJsonBody(res, 'console state', IRONIC) as { console_enabled?: unknown; console_info?: unknown };
    if (typeof doc.console_enabled !== 'boolean') throw new VncgateError('IRONIC_ERR_BAD_RESPONSE', 'console state without console_enabled');
    const info = doc.console_info;
    if (info === null || info === undefined) return { enabled: doc.console_enabled, info: null };
    if (typeof info !== 'object') throw new VncgateError('IRONIC_ERR_BAD_RESPONSE', 'console_info is not an object');
    const i = info as { type?: unknown; url?: unknown };
    return { enabled: doc.console_enabled, info: { type: typeof i.type === 'string' ? i.type : 'unknown', url: typeof i.url === 'string' ? i.url : null } };
  }

  /** PUT states/console; Ironic answers 202 and changes state asynchronously (poll getConsole). */
  async setConsole(node: string, enabled: boolean, signal?: AbortSignal): Promise<void> {
    const res = await this.#call('PUT', `/v1/nodes/${ident(node)}/states/console`, IRONIC_MICROVERSION.console, { enabled }, signal);
    this.#check(res, node, enabled ? 'enable the console' : 'disable the console');
  }

  async getNodeConsoleFields(node: string, signal?: AbortSignal): Promise<NodeConsoleFields> {
    const fields = 'uuid,name,driver,console_interface,console_enabled,driver_internal_info,last_error';
    const res = await this.#call('GET', `/v1/nodes/${ident(node)}?fields=${fields}`, IRONIC_MICROVERSION.nodeFields, undefined, signal);
    this.#check(res, node, 'read the node');
    const doc = parseJsonBody(res, 'node', IRONIC) as Record<string, unknown>;
    if (typeof doc.uuid !== 'string') throw new VncgateError('IRONIC_ERR_BAD_RESPONSE', 'node without uuid');
    const dii = doc.driver_internal_info && typeof doc.driver_internal_info === 'object' ? (doc.driver_internal_info as Record<string, unknown>) : {};
    const port = typeof dii.vnc_port === 'number' ? dii.vnc_port : typeof dii.vnc_port === 'string' && /^\d+$/.test(dii.vnc_port) ? Number(dii.vnc_port) : null;
    return {
      uuid: doc.uuid,
      name: typeof doc.name === 'string' ? doc.name : null,
      driver: typeof doc.driver === 'string' ? doc.driver : null,
      consoleInterface: typeof doc.console_interface === 'string' ? doc.console_interface : null,
      consoleEnabled: doc.console_enabled === true,
      vncHost: typeof dii.vnc_host === 'string' && dii.vnc_host !== '' ? dii.vnc_host : null,
      vncPort: port !== null && port > 0 && port < 65536 ? port : null,
    };
  }

  #check(res: HttpResponse, node: string, what: string): void {
    if (res.status >= 200 && res.status < 300) return;
    const fault = ironicFault(res);
    const details = { status: res.status, node, fault };
    if (res.status === 404) throw new VncgateError('IRONIC_ERR_NODE_NOT_FOUND', `Ironic has no node ${node}: ${fault}`, { details });
    if (res.status === 401 || res.status === 403) throw new VncgateError('IRONIC_ERR_AUTH', `Ironic refused to ${what} of ${node} (HTTP ${res.status}): ${fault}`, { details });
    if (res.status >= 500) throw new VncgateError('IRONIC_ERR_SERVER', `Ironic failed to ${what} of ${node} (HTTP ${res.status}): ${fault}`, { details });
    if (res.status === 400 && /console|UnsupportedDriverExtension/i.test(fault)) {
      throw new VncgateError('IRONIC_ERR_CONSOLE_TYPE', `Ironic cannot ${what} of ${node}: ${fault}`, {
        details,
        publicReason: `Node ${node} has no console that this service can open (Ironic: console interface does not support it)`,
      });
    }
    throw new VncgateError('IRONIC_ERR_BAD_RESPONSE', `Ironic refused to ${what} of ${node} (HTTP ${res.status}): ${fault}`, { details });
  }

  async #call(method: 'GET' | 'PUT', path: string, microversion: string, body: unknown, signal: AbortSignal | undefined): Promise<HttpResponse> {
    const o = this.#opts;
    const attempts = method === 'GET' ? 1 + o.retries : 1;
    let lastErr: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await abortableSleep(retryDelayMs(attempt), signal);
      try {
        const headers: Record<string, string> = { 'X-OpenStack-Ironic-API-Version': microversion };
        if (o.auth.type === 'http_basic') headers.authorization = `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64')}`;
        const send = (base: string, extra: Record<string, string> = {}): Promise<HttpResponse> =>
          httpJson({
            method,
            url: `${base.replace(/\/+$/, '')}${path}`,
            headers: { ...headers, ...extra },
            ...(body !== undefined ? { body } : {}),
            timeoutMs: o.timeoutMs,
            ...(o.ca ? { ca: o.ca } : {}),
            ...(signal ? { signal } : {}),
            to: IRONIC,
            observe: o.observe,
          });
        const res =
          o.auth.type === 'keystone' ? await o.auth.session.authorized((t) => send(o.url ?? t.endpoint, { 'X-Auth-Token': t.token })) : await send(o.url!);
        if (method === 'GET' && res.status >= 500 && attempt + 1 < attempts) {
          lastErr = new VncgateError('IRONIC_ERR_SERVER', `Ironic answered ${res.status}: ${ironicFault(res)}`);
          continue;
        }
        return res;
      } catch (err) {
        lastErr = err;
        const retryable = isTransportFailure(err, IRONIC) || isKeystoneTransient(err);
        if (!retryable || attempt + 1 >= attempts) throw err;
      }
    }
    throw lastErr;
  }
}

function ident(node: string): string {
  if (!NODE_IDENT.test(node)) throw new VncgateError('IRONIC_ERR_NODE_NOT_FOUND', `not a node UUID or name: ${JSON.stringify(node.slice(0, 80))}`);
  return encodeURIComponent(node);
}

export { abortableSleep };
