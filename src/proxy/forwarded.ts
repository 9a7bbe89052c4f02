import type { Config } from '../config/index.js';

/** Tells whether the connection's peer (after any PROXY header) may speak for the client. */
export type ForwardedTrust = (peerAddress: string | undefined) => boolean;

/**
 * Whose `X-Forwarded-For`/`-Proto`/`-Host` are read: peers in `trustedProxies`, or anyone with the
 * deprecated `origins.trustForwardedHeaders` (what that option always meant); null: nobody's, and
 * the connection's own address and scheme stand. Fastify applies it hop by hop to
 * X-Forwarded-For (`trustProxy`), so `req.ip` is the nearest address not in `trustedProxies`: a
 * client cannot push its own entries past a proxy that appends.
 */
export function forwardedTrust(config: Config): ForwardedTrust | null {
  if (config.raw.origins.trustForwardedHeaders) return () => true;
  if (config.trustedProxies.size === 0) return null;
  const set = config.trustedProxies;
  return (address) => set.has(address);
}

/** The last entry of a forwarded header, the one the nearest (trusted) proxy wrote; undefined if empty. */
export function lastForwardedValue(v: string | string[] | undefined): string | undefined {
  const text = Array.isArray(v) ? v.join(',') : v;
  if (text === undefined) return undefined;
  const last = text.slice(text.lastIndexOf(',') + 1).trim();
  return last === '' ? undefined : last;
}
