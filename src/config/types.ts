import type { BackendSecurity } from '../target.js';
import type { AddressSet, TargetPolicy } from '../target-policy.js';
import type { RawConfig } from './schema.js';

/** Keystone v3 credentials with secrets read. */
export type KeystoneSettings = { authUrl: string; interface: 'public' | 'internal' | 'admin'; region: string | null } & (
  | { method: 'password'; username: string; password: string; userDomainName: string; projectName: string; projectDomainName: string }
  | { method: 'application_credential'; applicationCredentialId: string; applicationCredentialSecret: string }
);

/** Ironic settings with secrets read, or null when Ironic is not configured. */
export type IronicSettings = Readonly<{
  url: string | null;
  auth:
    | { type: 'none' }
    | { type: 'http_basic'; username: string; password: string }
    | ({ type: 'keystone'; serviceType: string } & KeystoneSettings);
  ca: Buffer | null;
}>;

/** Nova settings with secrets read, or null when Nova is not configured. */
export type NovaSettings = Readonly<{
  resolver: 'api' | 'db';
  url: string | null;
  auth: { type: 'noauth' } | ({ type: 'keystone'; serviceType: string } & KeystoneSettings);
  dbUrls: readonly string[];
  ca: Buffer | null;
}>;

export type ListenAddress = { host: string; port: number };

/** Where the token store's Redis is, with secrets read; null = in-memory tokens. */
export type RedisSettings = Readonly<
  (
    | { mode: 'url'; url: string }
    | { mode: 'sentinel'; sentinels: readonly ListenAddress[]; sentinelName: string; sentinelPassword: string | null }
    | { mode: 'cluster'; cluster: readonly ListenAddress[] }
  ) & { username: string | null; password: string | null; waitReplicas: number; waitTimeoutMs: number }
>;


/** The validated, resolved, frozen configuration handed to the rest of the program. */
export type Config = Readonly<{
  raw: RawConfig;
  /** Where the file came from, if any (for messages). */
  source: string | null;
  listen: readonly ListenAddress[];
  /** Listeners whose connections start with a PROXY protocol header (from trustedProxies only). */
  listenProxyProtocol: readonly ListenAddress[];
  /** trustedProxies, compiled: whose PROXY headers and X-Forwarded-* headers are believed. */
  trustedProxies: AddressSet;
  /** Where GET /metrics listens, or null (metrics off). */
  metricsListen: ListenAddress | null;
  /**
   * The front end's certificate and key as read at start-up (a checked pair), where they came
   * from (for reloads), or null when serving plain HTTP.
   */
  tls: Readonly<{
    cert: Buffer;
    key: Buffer;
    certFile: string;
    keyFile: string;
    minVersion: 'TLSv1.2' | 'TLSv1.3';
    ciphers: string | null;
    watchFiles: boolean;
  }> | null;
  publicUrl: string | null;
  profiles: ReadonlyMap<string, BackendSecurity>;
  /** backends.allowedTargets, compiled: where static (host:port) targets may point. */
  targetPolicy: TargetPolicy;
  /** Backend profiles that turn hostname verification off (logged at start-up). */
  hostnameCheckDisabled: readonly string[];
  /** The token store's Redis (url, Sentinel or Cluster), or null for in-memory tokens. */
  redis: RedisSettings | null;
  ironic: IronicSettings | null;
  nova: NovaSettings | null;
  jwt: Readonly<{
    hs256Secret: Buffer | null;
    jwks: unknown | null;
    jwksUrl: string | null;
    issuer: string | null;
    audience: string | null;
    clockToleranceSeconds: number;
    maxLifetimeSeconds: number;
  }> | null;
}>;

/** What a configuration is loaded for: serving (everything), or minting tokens (what that needs). */
export type LoadPurpose = 'serve' | 'tokens';

export type LoadOptions = {
  /** Default 'serve'. 'tokens': no listener TLS files, JWT keys or OpenStack credentials are read. */
  purpose?: LoadPurpose;
  /** Config file; otherwise VNCGATE_CONFIG; otherwise none (defaults + environment). */
  file?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Applied last, e.g. from command-line flags: { listen: [...] }. */
  overrides?: Record<string, unknown>;
};
