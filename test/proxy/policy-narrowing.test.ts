/**
 * Issue 18: the view-only and clipboard policy per profile (config), narrowed per token (record,
 * token API body), never widened.
 */
import { describe, expect, it } from 'vitest';
import { loadConfigWithProblems, profilePolicy } from '../../src/config/index.js';
import { isVncgateError } from '../../src/errors.js';
import { parseTokenRequest } from '../../src/proxy/token-request.js';
import { CLIPBOARD_POLICIES, MAX_CLIPBOARD_LIMIT, narrowPolicy, parsePolicyNarrowing, type ClientMessagePolicy, type ClipboardPolicy } from '../../src/rfb/index.js';
import { decodeRecord, encodeRecord } from '../../src/tokens/index.js';
import { newRecord } from '../../src/tokens/record.js';

const OPEN: ClientMessagePolicy = { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity };
const DIRECTIONS: Record<ClipboardPolicy, { remote: boolean; browser: boolean }> = {
  none: { remote: false, browser: false },
  'to-browser': { remote: false, browser: true },
  'to-remote': { remote: true, browser: false },
  both: { remote: true, browser: true },
};

describe('narrowPolicy: the narrowest of profile and token', () => {
  it('keeps only the clipboard directions both allow, for every pair', () => {
    for (const profile of CLIPBOARD_POLICIES) {
      for (const token of CLIPBOARD_POLICIES) {
        const got = DIRECTIONS[narrowPolicy({ ...OPEN, clipboard: profile }, { clipboard: token }).clipboard];
        expect(got, `${profile} ∧ ${token}`).toEqual({
          remote: DIRECTIONS[profile].remote && DIRECTIONS[token].remote,
          browser: DIRECTIONS[profile].browser && DIRECTIONS[token].browser,
        });
      }
    }
  });

  it('view-only and the size limit only ever tighten', () => {
    expect(narrowPolicy(OPEN, { viewOnly: true }).viewOnly).toBe(true);
    expect(narrowPolicy({ ...OPEN, viewOnly: true }, {}).viewOnly).toBe(true);
    expect(narrowPolicy({ ...OPEN, maxClipboardBytes: 100 }, { maxClipboardBytes: 5000 }).maxClipboardBytes).toBe(100);
    expect(narrowPolicy({ ...OPEN, maxClipboardBytes: 100 }, { maxClipboardBytes: 7 }).maxClipboardBytes).toBe(7);
    expect(narrowPolicy(OPEN, undefined)).toBe(OPEN);
  });

  it('parses a narrowing strictly; viewOnly false narrows nothing', () => {
    expect(parsePolicyNarrowing({ viewOnly: false })).toEqual({ ok: true, narrowing: undefined });
    expect(parsePolicyNarrowing({ viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 })).toEqual({ ok: true, narrowing: { viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 } });
    for (const bad of [{ viewOnly: 'yes' }, { clipboard: 'all' }, { maxClipboardBytes: -1 }, { maxClipboardBytes: 1.5 }, { maxClipboardBytes: MAX_CLIPBOARD_LIMIT + 1 }, { control: true }]) {
      expect(parsePolicyNarrowing(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('profiles: viewOnly, clipboard, maxClipboardBytes', () => {
  const load = (profile: Record<string, unknown>) =>
    loadConfigWithProblems({ env: {}, overrides: { tls: { plainHttp: true }, backends: { profiles: { bmc: { security: ['none'], ...profile } } } } as never });

  it('defaults to full control, both directions, no limit (so no filter); the implicit "none" profile too', () => {
    const { config, problems } = load({});
    expect(problems).toEqual([]);
    expect(profilePolicy(config!.raw.backends.profiles, 'bmc')).toEqual(OPEN);
    expect(profilePolicy(config!.raw.backends.profiles, 'none')).toEqual(OPEN);
  });

  it('takes a configured policy', () => {
    const { config, problems } = load({ viewOnly: true, clipboard: 'to-browser', maxClipboardBytes: 4096 });
    expect(problems).toEqual([]);
    expect(profilePolicy(config!.raw.backends.profiles, 'bmc')).toEqual({ viewOnly: true, clipboard: 'to-browser', maxClipboardBytes: 4096 });
  });

  it('refuses what is not a policy, naming the option', () => {
    for (const [field, value] of [['viewOnly', 'yes'], ['clipboard', 'sideways'], ['maxClipboardBytes', -1], ['maxClipboardBytes', MAX_CLIPBOARD_LIMIT + 1]] as const) {
      const { problems } = load({ [field]: value });
      expect(problems.join('\n'), field).toContain(`backends.profiles.bmc.${field}`);
    }
  });
});

describe('token records carry the narrowing, decoded strictly', () => {
  const target = { kind: 'static', host: '10.0.0.7', port: 5900 } as const;

  it('round-trips a narrowing; a record without one is unchanged (version 1)', () => {
    const record = newRecord(target, 0, 60_000, { policy: { viewOnly: true, maxClipboardBytes: 10 } });
    expect(decodeRecord(encodeRecord(record))).toEqual({ ok: true, record });
    const plain = newRecord(target, 0, 60_000);
    expect(decodeRecord(encodeRecord(plain))).toEqual({ ok: true, record: plain });
    expect('policy' in plain).toBe(false);
  });

  it('refuses a record whose policy cannot be read, rather than reading it as no narrowing', () => {
    const record = JSON.parse(encodeRecord(newRecord(target, 0, 60_000))) as Record<string, unknown>;
    for (const policy of [null, 'view-only', [], { viewOnly: 1 }, { clipboard: 'sideways' }, { widen: true }]) {
      expect(decodeRecord(JSON.stringify({ ...record, policy })), JSON.stringify(policy)).toEqual({ ok: false, problem: 'record has an invalid policy' });
    }
  });
});

describe('token API body: viewOnly, clipboard, maxClipboardBytes', () => {
  const ctx = { defaultTtlSeconds: 300, ironic: true, hasProfile: () => true };

  it('accepts them with a target or a node', () => {
    expect(parseTokenRequest({ target: '10.0.0.7:5900', viewOnly: true, clipboard: 'to-browser', maxClipboardBytes: 100 }, ctx).policy).toEqual({
      viewOnly: true,
      clipboard: 'to-browser',
      maxClipboardBytes: 100,
    });
    expect(parseTokenRequest({ node: 'node-1', viewOnly: true }, ctx).policy).toEqual({ viewOnly: true });
    expect(parseTokenRequest({ node: 'node-1' }, ctx).policy).toBeUndefined();
  });

  it('refuses bad values with HTTP_ERR_BAD_REQUEST naming the field', () => {
    for (const [field, value] of [['viewOnly', 'true'], ['clipboard', 'everything'], ['maxClipboardBytes', -5]] as const) {
      try {
        parseTokenRequest({ target: '10.0.0.7:5900', [field]: value }, ctx);
        expect.unreachable(`accepted ${field}`);
      } catch (err) {
        expect(isVncgateError(err) && err.code).toBe('HTTP_ERR_BAD_REQUEST');
        expect(isVncgateError(err) && err.details?.field).toBe(field);
      }
    }
  });
});
