import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { VncgateError, type ErrorCode } from '../errors.js';
import type { TargetPolicy } from '../target-policy.js';

/** One resolved address, as dns.lookup({all: true}) returns it. */
export type ResolvedAddress = { readonly address: string; readonly family: number };

/** Resolves a host name to every address it has (injectable so tests can play DNS rebinding). */
export type LookupAll = (host: string) => Promise<readonly ResolvedAddress[]>;

export const systemLookupAll: LookupAll = (host) => dnsLookup(host, { all: true });

/** At most this many addresses are named in a refusal's message (a name may have hundreds). */
const SHOWN_DENIED = 4;

function dnsErrorCode(err: unknown): ErrorCode {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME' || code === 'ENODATA'
    ? 'BACKEND_ERR_DNS'
    : 'BACKEND_ERR_UNREACHABLE';
}

/** `lookup(host)` within `timeoutMs`, or until `signal` aborts (getaddrinfo itself cannot be cancelled). */
function lookupWithin(lookup: LookupAll, host: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<readonly ResolvedAddress[]> {
  return new Promise((resolve, reject) => {
    const done = (err: VncgateError | null, addresses?: readonly ResolvedAddress[]): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(addresses!);
    };
    const onAbort = (): void => done(new VncgateError('SESSION_ERR_SHUTDOWN', 'aborted while resolving the console endpoint'));
    const timer = setTimeout(() => done(new VncgateError('BACKEND_ERR_TIMEOUT', `resolving ${host} took longer than ${timeoutMs} ms`)), timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    lookup(host).then(
      (addresses) => done(null, addresses),
      (err: unknown) =>
        done(new VncgateError(dnsErrorCode(err), `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })),
    );
  });
}

export type AllowedTargetOptions = {
  policy: TargetPolicy;
  /** Deadline for the DNS lookup. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  lookup?: LookupAll | undefined;
};

/**
 * The addresses of `host` (an IP literal, or a name resolved here) if the policy allows every one
 * of them on `port`; TARGET_ERR_FORBIDDEN if it refuses any, BACKEND_ERR_DNS if the name has none.
 * Every address must pass, not just one: whoever controls the name's DNS would otherwise add a
 * forbidden address beside an allowed one, and the connection might use it. Callers connect to
 * exactly the addresses returned, never resolve the name again (DNS rebinding).
 */
export async function allowedAddresses(host: string, port: number, opts: AllowedTargetOptions): Promise<readonly ResolvedAddress[]> {
  const family = isIP(host);
  const addresses: readonly ResolvedAddress[] =
    family !== 0 ? [{ address: host, family }] : await lookupWithin(opts.lookup ?? systemLookupAll, host, opts.timeoutMs, opts.signal);
  if (addresses.length === 0) throw new VncgateError('BACKEND_ERR_DNS', `${host} has no addresses`);
  const denied = addresses.map((a) => opts.policy.check(a.address, port)).flatMap((v) => (v.allowed ? [] : [v.why]));
  if (denied.length > 0) {
    const shown = denied.slice(0, SHOWN_DENIED).join('; ') + (denied.length > SHOWN_DENIED ? `; and ${denied.length - SHOWN_DENIED} more` : '');
    throw new VncgateError('TARGET_ERR_FORBIDDEN', `console endpoint ${host} port ${port} refused by the target policy: ${shown}`, {
      details: { host, port },
    });
  }
  return addresses;
}
