import { isIP } from 'node:net';

export type { ConsoleTarget, NodeTarget, StaticTarget } from '../target.js';
import type { ConsoleTarget, StaticTarget } from '../target.js';

export const TARGET_KINDS = ['static', 'node'] as const satisfies readonly ConsoleTarget['kind'][];

const LIMITS = {
  hostChars: 253, // RFC 1035 §2.3.4 (textual form of a 255-octet name)
  hostLabelChars: 63, // RFC 1035 §2.3.4
  profileChars: 64,
  nodeChars: 255, // Ironic: node name and UUID columns are String(255)
} as const;

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/;
const PROFILE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Ironic logical names may use RFC 3986 unreserved characters; UUIDs fit the same alphabet.
const NODE = /^[A-Za-z0-9._~-]+$/;

export type TargetParseResult =
  | { readonly ok: true; readonly target: ConsoleTarget }
  | { readonly ok: false; readonly problems: readonly string[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hostProblem(host: unknown): string | undefined {
  if (typeof host !== 'string' || host.length === 0) return 'host must be a non-empty string';
  if (host.length > LIMITS.hostChars) return `host must be at most ${LIMITS.hostChars} characters`;
  if (isIP(host) !== 0) return undefined;
  const labels = (host.endsWith('.') ? host.slice(0, -1) : host).split('.');
  const ok = labels.every((l) => l.length <= LIMITS.hostLabelChars && HOST_LABEL.test(l));
  return ok ? undefined : 'host must be an IP address or a DNS name';
}

/**
 * A static target from its text form, "host:port" or "[ipv6]:port" (the token API's `target`
 * string, `vncgate token create --target`), checked as parseTarget checks it.
 */
export function parseStaticTargetText(text: string, profile?: string): TargetParseResult {
  const m = text.length > LIMITS.hostChars + 8 ? null : (/^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text));
  if (!m) return { ok: false, problems: ['target must be "host:port" or "[ipv6]:port"'] };
  return parseTarget({ kind: 'static', host: m[1], port: Number(m[2]), ...(profile === undefined ? {} : { profile }) });
}

/**
 * Checks an untrusted value (a request body, or JSON read back from the store) and returns a fresh
 * target holding only the known fields. Reports every problem, not just the first. Unknown fields
 * are dropped, not refused: a record written by a newer replica during a rolling upgrade must
 * still open. Request bodies are checked strictly before they get here (src/proxy/token-request.ts).
 */
export function parseTarget(value: unknown): TargetParseResult {
  if (!isRecord(value)) return { ok: false, problems: ['target must be an object'] };
  const problems: string[] = [];
  switch (value['kind']) {
    case 'static': {
      const { host, port, profile } = value;
      const hp = hostProblem(host);
      if (hp !== undefined) problems.push(hp);
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push('port must be an integer from 1 to 65535');
      }
      if (profile !== undefined) {
        if (typeof profile !== 'string' || profile.length > LIMITS.profileChars || !PROFILE.test(profile)) {
          problems.push(`profile must be 1-${LIMITS.profileChars} characters of [A-Za-z0-9._-], starting alphanumeric`);
        }
      }
      if (problems.length > 0) return { ok: false, problems };
      const target: StaticTarget = {
        kind: 'static',
        host: host as string,
        port: port as number,
        ...(profile === undefined ? {} : { profile: profile as string }),
      };
      return { ok: true, target };
    }
    case 'node': {
      const { node } = value;
      if (typeof node !== 'string' || node.length === 0 || node.length > LIMITS.nodeChars || !NODE.test(node)) {
        return { ok: false, problems: [`node must be an Ironic node UUID or name (1-${LIMITS.nodeChars} characters)`] };
      }
      return { ok: true, target: { kind: 'node', node } };
    }
    default:
      return { ok: false, problems: [`target kind must be one of ${TARGET_KINDS.join(', ')}`] };
  }
}
