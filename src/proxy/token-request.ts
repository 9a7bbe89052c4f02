import { VncgateError } from '../errors.js';
import { parsePolicyNarrowing, type PolicyNarrowing } from '../rfb/index.js';
import { parseStaticTargetText, parseTarget, type ConsoleTarget, type TargetParseResult } from '../tokens/index.js';

/** A checked body of POST /v1/console-tokens. */
export type TokenRequest = {
  readonly target: ConsoleTarget;
  readonly ttlSeconds: number;
  readonly count: number | undefined;
  /** What the token narrows in its profile's view-only and clipboard policy; undefined: nothing. */
  readonly policy: PolicyNarrowing | undefined;
  /** The issuer asks for a recording (issue 18). */
  readonly record?: true;
  /** On a shared console, the token's viewer takes control on joining. */
  readonly control?: true;
};

export type TokenRequestContext = {
  readonly defaultTtlSeconds: number;
  /** Whether node targets can be served (Ironic configured). */
  readonly ironic: boolean;
  readonly hasProfile: (name: string) => boolean;
};

const BODY_KEYS = ['target', 'node', 'profile', 'ttlSeconds', 'count', 'viewOnly', 'clipboard', 'maxClipboardBytes', 'record', 'control'] as const;
const TARGET_KEYS = ['host', 'port'] as const;

/** Longest piece of a client's key echoed back in a message. */
const SHOWN_KEY_CHARS = 64;

function bad(message: string, field?: string): VncgateError {
  return new VncgateError('HTTP_ERR_BAD_REQUEST', message, field === undefined ? undefined : { details: { field } });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Refuses any key outside `allowed`, naming the first one. */
function refuseUnknownKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const unknown = Object.keys(value).find((k) => !allowed.includes(k));
  if (unknown === undefined) return;
  const shown = JSON.stringify(unknown.length > SHOWN_KEY_CHARS ? `${unknown.slice(0, SHOWN_KEY_CHARS)}...` : unknown);
  throw bad(`${where} has unknown property ${shown} (allowed: ${allowed.join(', ')})`, unknown.slice(0, SHOWN_KEY_CHARS));
}

function integer(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw bad(`${name} must be an integer of at least ${min}`, name);
  return value;
}

function staticTarget(target: unknown, profile: string | undefined): TargetParseResult {
  if (typeof target === 'string') return parseStaticTargetText(target, profile);
  if (!isPlainObject(target)) throw bad('target must be "host:port", "[ipv6]:port" or {"host", "port"}', 'target');
  refuseUnknownKeys(target, TARGET_KEYS, 'target');
  return parseTarget({ kind: 'static', host: target.host, port: target.port, ...(profile === undefined ? {} : { profile }) });
}

/**
 * Checks the body of POST /v1/console-tokens strictly:
 * `{target: "host:port" | "[ipv6]:port" | {host, port}, profile?, ttlSeconds?, count?}` or
 * `{node, ttlSeconds?, count?}`, either with `viewOnly?`, `clipboard?`, `maxClipboardBytes?` (they
 * only narrow the profile's policy) and `record?` (only adds a recording). Unknown properties are refused, never carried over: the target
 * is built from the named fields only, so a body cannot smuggle in another `kind`.
 * TTL and count bounds are the token store's.
 */
export function parseTokenRequest(body: unknown, ctx: TokenRequestContext): TokenRequest {
  if (!isPlainObject(body)) throw bad('expected a JSON object');
  refuseUnknownKeys(body, BODY_KEYS, 'the request');
  const { target, node, profile } = body;
  if (profile !== undefined && typeof profile !== 'string') throw bad('profile must be a string', 'profile');

  let parsed: TargetParseResult;
  if (node !== undefined) {
    if (target !== undefined) throw bad('give either target or node, not both', 'node');
    if (profile !== undefined) throw bad('profile goes with target; node profiles come from the ironic section of the configuration', 'profile');
    if (!ctx.ironic) throw bad('node targets need Ironic to be configured (ironic.url)', 'node');
    parsed = parseTarget({ kind: 'node', node });
  } else if (target !== undefined) {
    parsed = staticTarget(target, profile);
  } else {
    throw bad('target (host:port) or node is required');
  }
  if (!parsed.ok) throw bad(`invalid target: ${parsed.problems.join('; ')}`, 'target');
  if (profile !== undefined && !ctx.hasProfile(profile)) throw bad(`unknown backend profile ${JSON.stringify(profile.slice(0, SHOWN_KEY_CHARS))}`, 'profile');

  const ttlSeconds = body.ttlSeconds === undefined ? ctx.defaultTtlSeconds : integer(body.ttlSeconds, 'ttlSeconds', 1);
  const count = body.count === undefined ? undefined : integer(body.count, 'count', 1);
  const { viewOnly, clipboard, maxClipboardBytes } = body;
  const policy = parsePolicyNarrowing({ viewOnly, clipboard, maxClipboardBytes });
  if (!policy.ok) throw bad(policy.problems.join('; '), policy.problems[0]?.split(' ')[0]);
  if (body.record !== undefined && typeof body.record !== 'boolean') throw bad('record must be true or false', 'record');
  if (body.control !== undefined && typeof body.control !== 'boolean') throw bad('control must be true or false', 'control');
  return {
    target: parsed.target,
    ttlSeconds,
    count,
    policy: policy.narrowing,
    ...(body.record === true ? { record: true as const } : {}),
    ...(body.control === true ? { control: true as const } : {}),
  };
}
