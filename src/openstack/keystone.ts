import { VncgateError } from '../errors.js';
import type { UpstreamObserver } from '../observe/upstream.js';
import { httpJson, isTransportFailure, parseJsonBody, type HttpResponse, type OpenStackService } from './http.js';

/** Keystone's own failures name Keystone, whichever service the token is for (issue 16). */
const KEYSTONE: OpenStackService = {
  service: 'keystone',
  unreachable: 'KEYSTONE_ERR_UNREACHABLE',
  timeout: 'KEYSTONE_ERR_TIMEOUT',
  badResponse: 'KEYSTONE_ERR_BAD_RESPONSE',
};

/**
 * A Keystone failure worth another attempt by a GET that needed the token: Keystone could not be
 * reached, did not answer in time, or answered 5xx. Refused credentials are not retried.
 */
export function isKeystoneTransient(err: unknown): boolean {
  return isTransportFailure(err, KEYSTONE) || (err instanceof VncgateError && err.code === 'KEYSTONE_ERR_SERVER');
}

/** Keystone v3 credentials: a user's password or an application credential. */
export type KeystoneCredentials = {
  authUrl: string;
  /** `public`, `internal` or `admin`: which catalog endpoint to use. */
  interface: 'public' | 'internal' | 'admin';
  region: string | null;
  /** Catalog service type to look up (`baremetal`, `compute`); messages name it too. */
  serviceType: string;
  caBundle?: Buffer;
  timeoutMs: number;
  /** Told each token request's duration (the upstream metric). */
  observe?: UpstreamObserver | undefined;
} & (
  | {
      method: 'password';
      username: string;
      password: string;
      userDomainName: string;
      projectName: string;
      projectDomainName: string;
    }
  | { method: 'application_credential'; applicationCredentialId: string; applicationCredentialSecret: string }
);

type CatalogEntry = { type?: string; endpoints?: { interface?: string; region?: string | null; region_id?: string | null; url?: string }[] };

export type KeystoneToken = { token: string; expiresAt: number; endpoint: string };

/**
 * A Keystone v3 session: one token, reused until a minute before it expires (or until the API
 * says 401), and the service endpoint from that token's catalog.
 */
export class KeystoneSession {
  readonly #creds: KeystoneCredentials;
  #current: KeystoneToken | null = null;
  #pending: Promise<KeystoneToken> | null = null;
  readonly #now: () => number;

  constructor(creds: KeystoneCredentials, now: () => number = Date.now) {
    this.#creds = creds;
    this.#now = now;
  }

  /** A valid token and endpoint, fetching a new token when needed (concurrent callers share one). */
  async get(): Promise<KeystoneToken> {
    if (this.#current && this.#current.expiresAt - 60_000 > this.#now()) return this.#current;
    this.#pending ??= this.#issue().finally(() => {
      this.#pending = null;
    });
    this.#current = await this.#pending;
    return this.#current;
  }

  /** Forget the token (after a 401 from the service). */
  invalidate(): void {
    this.#current = null;
  }

  /**
   * Sends a request with a token (and the catalog endpoint), and once more with a fresh token if
   * the service answers 401: the token was revoked, or Keystone's keys rotated. A 401 means the
   * request was not acted on, so this holds for a PUT too, and it is not one of the caller's
   * retries (with `retries: 0` a revoked token used to fail the request).
   */
  async authorized(send: (t: KeystoneToken) => Promise<HttpResponse>): Promise<HttpResponse> {
    const res = await send(await this.get());
    if (res.status !== 401) return res;
    this.invalidate();
    return send(await this.get());
  }

  async #issue(): Promise<KeystoneToken> {
    const c = this.#creds;
    const identity =
      c.method === 'password'
        ? {
            methods: ['password'],
            password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } },
          }
        : {
            methods: ['application_credential'],
            application_credential: { id: c.applicationCredentialId, secret: c.applicationCredentialSecret },
          };
    const body = {
      auth: {
        identity,
        // Application credentials carry their own scope; a password user is scoped to a project.
        ...(c.method === 'password' ? { scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } } } : {}),
      },
    };
    const base = c.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '');
    const res = await httpJson({
      method: 'POST',
      url: `${base}/v3/auth/tokens`,
      body,
      timeoutMs: c.timeoutMs,
      ...(c.caBundle ? { ca: c.caBundle } : {}),
      to: KEYSTONE,
      observe: c.observe,
    });
    const forWhat = `a token for the ${c.serviceType} service`;
    if (res.status >= 500) throw new VncgateError('KEYSTONE_ERR_SERVER', `Keystone failed to issue ${forWhat} (HTTP ${res.status})`, { details: { status: res.status } });
    if (res.status !== 201 && res.status !== 200) {
      // 401 wrong secret, 400 a malformed scope (a missing domain), 404 an auth URL that is not Keystone's.
      throw new VncgateError('KEYSTONE_ERR_AUTH', `Keystone refused vncgate's credentials for ${forWhat} (HTTP ${res.status})`, { details: { status: res.status } });
    }
    const token = res.headers['x-subject-token'];
    if (typeof token !== 'string' || token === '') throw new VncgateError('KEYSTONE_ERR_BAD_RESPONSE', `Keystone answered without X-Subject-Token (${forWhat})`);
    const doc = parseJsonBody(res, 'Keystone token', KEYSTONE) as { token?: { expires_at?: string; catalog?: CatalogEntry[] } };
    const expiresAt = Date.parse(doc.token?.expires_at ?? '');
    if (!Number.isFinite(expiresAt)) throw new VncgateError('KEYSTONE_ERR_BAD_RESPONSE', `Keystone token has no valid expires_at (${forWhat})`);
    const endpoint = findEndpoint(doc.token?.catalog ?? [], c.serviceType, c.interface, c.region);
    if (!endpoint) {
      throw new VncgateError('KEYSTONE_ERR_NO_ENDPOINT', `no ${c.interface} ${c.serviceType} endpoint${c.region ? ` in region ${c.region}` : ''} in the Keystone catalog`, {
        details: { serviceType: c.serviceType, interface: c.interface, region: c.region },
      });
    }
    return { token, expiresAt, endpoint };
  }
}

export function findEndpoint(catalog: CatalogEntry[], type: string, iface: string, region: string | null): string | null {
  for (const entry of catalog) {
    if (entry.type !== type) continue;
    for (const e of entry.endpoints ?? []) {
      if (e.interface !== iface) continue;
      if (region !== null && e.region !== region && e.region_id !== region) continue;
      if (typeof e.url === 'string' && e.url !== '') return e.url.replace(/\/+$/, '');
    }
  }
  return null;
}
