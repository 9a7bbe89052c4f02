import { isIP } from 'node:net';
import { VncgateError } from '../../src/errors.js';
import type { ServerSecurity } from '../../src/rfb/index.js';
import { MAX_FRAMEBUFFER_SIDE } from './constants.js';

export type SyntheticMode = 'demo' | 'stream' | 'pingpong';
export const SYNTHETIC_MODES: readonly SyntheticMode[] = ['demo', 'stream', 'pingpong'];

/** The pino methods we use; a pino logger fits. */
export interface SyntheticLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: SyntheticLogger = { debug() {}, info() {}, warn() {}, error() {} };

export type SyntheticServerOptions = {
  /** Listen address. Default 127.0.0.1: the synthetic server has no business on a public interface. */
  host?: string | undefined;
  /** Listen port; 0 (the default) picks a free one, read it back from `port`. */
  port?: number | undefined;
  /** `demo` for people, `stream` for throughput, `pingpong` for round-trip latency. */
  mode: SyntheticMode;
  /** Framebuffer size. Default 1024×768. */
  width?: number | undefined;
  height?: number | undefined;
  /** ServerInit desktop name. Default "vncgate demo console" / "vncgate stream" / "vncgate pingpong". */
  desktopName?: string | undefined;
  /** Security types offered, in preference order. Default ['none']. */
  security?: readonly ServerSecurity[] | undefined;
  /** VncAuth password (only its first 8 bytes count, §7.2.2). Required when security has 'vncauth'. */
  password?: string | undefined;
  /** Stream mode: Raw pixel bytes per update, about. Default 256 KiB. */
  streamUpdateBytes?: number | undefined;
  /** Connections served at once; more are closed at once (logged at warn). Default 1024. */
  maxClients?: number | undefined;
  /** Time a client has from connecting to sending ClientInit. Default 10 000 ms. */
  handshakeTimeoutMs?: number | undefined;
  /** Demo animation period. Default 100 ms. */
  tickIntervalMs?: number | undefined;
  /** Default: silent. */
  logger?: SyntheticLogger | undefined;
};

/** Every default, in one place. */
export const SYNTHETIC_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  width: 1024,
  height: 768,
  desktopName: { demo: 'vncgate demo console', stream: 'vncgate stream', pingpong: 'vncgate pingpong' },
  security: ['none'] as readonly ServerSecurity[],
  streamUpdateBytes: 256 * 1024,
  maxClients: 1024,
  handshakeTimeoutMs: 10_000,
  tickIntervalMs: 100,
} as const;

export type ResolvedOptions = {
  readonly host: string;
  readonly port: number;
  readonly mode: SyntheticMode;
  readonly width: number;
  readonly height: number;
  readonly desktopName: string;
  readonly security: readonly ServerSecurity[];
  readonly password: Buffer | undefined;
  readonly streamUpdateBytes: number;
  readonly maxClients: number;
  readonly handshakeTimeoutMs: number;
  readonly tickIntervalMs: number;
  readonly logger: SyntheticLogger;
};

/** Applies defaults and checks everything, reporting all problems at once (CONFIG_ERR_INVALID). */
export function resolveOptions(opts: SyntheticServerOptions): ResolvedOptions {
  const d = SYNTHETIC_DEFAULTS;
  const errors: string[] = [];
  const int = (name: string, value: number, min: number, max: number): number => {
    if (!Number.isInteger(value) || value < min || value > max) errors.push(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
    return value;
  };
  const mode = opts.mode;
  if (!SYNTHETIC_MODES.includes(mode)) errors.push(`mode must be one of ${SYNTHETIC_MODES.join(', ')}, got ${String(mode)}`);
  const host = opts.host ?? d.host;
  if (isIP(host) === 0 && host !== 'localhost') errors.push(`host must be an IP address or localhost, got ${JSON.stringify(host)}`);
  const security = [...(opts.security ?? d.security)];
  if (security.length === 0) errors.push('security must list at least one type');
  for (const s of security) if (s !== 'none' && s !== 'vncauth') errors.push(`security type ${JSON.stringify(s)} is not none or vncauth`);
  if (new Set(security).size !== security.length) errors.push('security lists a type twice');
  if (security.includes('vncauth') && (opts.password === undefined || opts.password === '')) errors.push('security vncauth needs a password');
  const desktopName = opts.desktopName ?? (SYNTHETIC_MODES.includes(mode) ? d.desktopName[mode] : '');
  if (Buffer.byteLength(desktopName, 'utf8') > 255) errors.push('desktopName must be at most 255 bytes');
  const resolved: ResolvedOptions = {
    host,
    port: int('port', opts.port ?? d.port, 0, 65_535),
    mode,
    width: int('width', opts.width ?? d.width, 1, MAX_FRAMEBUFFER_SIDE),
    height: int('height', opts.height ?? d.height, 1, MAX_FRAMEBUFFER_SIDE),
    desktopName,
    security,
    password: opts.password === undefined ? undefined : Buffer.from(opts.password, 'utf8'),
    streamUpdateBytes: int('streamUpdateBytes', opts.streamUpdateBytes ?? d.streamUpdateBytes, 1, 64 * 1024 * 1024),
    maxClients: int('maxClients', opts.maxClients ?? d.maxClients, 1, 100_000),
    handshakeTimeoutMs: int('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? d.handshakeTimeoutMs, 1, 3_600_000),
    tickIntervalMs: int('tickIntervalMs', opts.tickIntervalMs ?? d.tickIntervalMs, 10, 60_000),
    logger: opts.logger ?? silentLogger,
  };
  if (errors.length > 0) {
    throw new VncgateError('CONFIG_ERR_INVALID', `invalid synthetic server options: ${errors.join('; ')}`, { details: { errors } });
  }
  return Object.freeze(resolved);
}
