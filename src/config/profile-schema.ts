import { CLIPBOARD_POLICIES, MAX_CLIPBOARD_LIMIT, SECURITY_CHOICES, type ClientMessagePolicy, type SecurityChoice } from '../rfb/index.js';

/**
 * No clipboard limit unless configured. A default limit would put every session's input through
 * the filter (and take ExtendedMouseButtons from it: client-message-policy.ts), where today's
 * default is a byte-for-byte pipe at no cost per chunk; vncgate itself never buffers a clipboard
 * message whatever its size. Set a limit per profile (1048576 is far above what a person pastes)
 * or per token.
 */
export const DEFAULT_MAX_CLIPBOARD_BYTES = null;

/**
 * One entry of `backends.profiles` (schema.ts): how to authenticate to a console endpoint, and
 * what a browser may do on it (issue 18's view-only and clipboard policy; a token can narrow it),
 * and whether its sessions are recorded.
 */
export const PROFILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['security'],
  properties: {
    security: { type: 'array', minItems: 1, items: { enum: Object.keys(SECURITY_CHOICES) as SecurityChoice[] } },
    passwordFile: { type: 'string' },
    username: { type: 'string' },
    caFile: { type: 'string' },
    certFile: { type: 'string' },
    keyFile: { type: 'string' },
    verifyHostname: { type: 'boolean', default: true },
    servername: { type: 'string' },
    allowAnonymousTls: { type: 'boolean', default: false },
    /** Overrides limits.sessionsPerTarget for targets of this profile. */
    sessionsPerTarget: { type: 'integer', minimum: 0, maximum: 1_000 },
    /** Sessions for the same endpoint share one backend connection (src/proxy/share, README "Shared consoles"). */
    sharing: { type: 'boolean', default: false },
    /** Enforced in the relay: keys, pointer, clipboard writes, resize and power requests are dropped. */
    viewOnly: { type: 'boolean', default: false },
    /** Which way clipboard text may travel ("to-browser": from the console to the person). */
    clipboard: { enum: [...CLIPBOARD_POLICIES], default: 'both' },
    /** Largest clipboard text forwarded to the console; null: no limit (and, if nothing else is restricted, no filter at all). */
    maxClipboardBytes: { type: ['integer', 'null'], minimum: 0, maximum: MAX_CLIPBOARD_LIMIT, default: DEFAULT_MAX_CLIPBOARD_BYTES },
    /** Record every session of this profile (recordings.dir must be set); a token cannot turn it off. */
    record: { type: 'boolean', default: false },
    /** Recordings of this profile keep keystrokes (otherwise only counted). */
    recordKeys: { type: 'boolean', default: false },
  },
} as const;

/** A profile's policy fields as validated (absent for the implicit "none" profile). */
type ProfilePolicyFields = { viewOnly: boolean; clipboard: ClientMessagePolicy['clipboard']; maxClipboardBytes: number | null };

/** The policy of a profile, or the defaults when the profile is not configured (the implicit "none"). */
export function profilePolicy(profiles: Readonly<Record<string, ProfilePolicyFields>>, name: string): ClientMessagePolicy {
  const p = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
  if (p === undefined) return { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity };
  return { viewOnly: p.viewOnly, clipboard: p.clipboard, maxClipboardBytes: p.maxClipboardBytes ?? Infinity };
}
