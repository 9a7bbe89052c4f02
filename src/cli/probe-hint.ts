import { SECURITY_CHOICES, SECURITY_TYPE_NAMES, VENCRYPT_SUBTYPE_NAMES, type SecurityChoice } from '../rfb/index.js';

/**
 * `vncgate probe` without `--security`: the X509 subtypes and vncauth that the given credentials
 * allow, then none. The unencrypted VeNCrypt Plain and the anonymous-TLS subtypes are never
 * chosen unless named.
 */
export const PROBE_DEFAULT_PREFERENCE = ['vencrypt-x509plain', 'vencrypt-x509vnc', 'vencrypt-x509none', 'vncauth', 'none'] as const satisfies readonly SecurityChoice[];

/** Considered for a hint after the defaults: weaker, so only suggested when nothing better is offered. */
const OTHER_CHOICES = ['vencrypt-tlsvnc', 'vencrypt-tlsplain', 'vencrypt-tlsnone', 'vencrypt-plain'] as const satisfies readonly SecurityChoice[];

/** What the probe was given, as far as choosing a security type goes. */
export interface ProbeCredentials {
  /** The `--security` list, or null when the default preference was used. */
  readonly explicitSecurity: readonly SecurityChoice[] | null;
  readonly password: boolean;
  readonly username: boolean;
  readonly allowAnonymousTls: boolean;
}

const NEEDS: Readonly<Record<'vnc' | 'plain', string>> = { vnc: 'a VNC password', plain: 'a username and password' };

/** The options to add so `choice` could be used; [] when it already can. */
function missingFor(choice: SecurityChoice, given: ProbeCredentials): string[] {
  const { inner, transport } = SECURITY_CHOICES[choice];
  const listed = given.explicitSecurity ?? PROBE_DEFAULT_PREFERENCE;
  const missing: string[] = [];
  if (!(listed as readonly SecurityChoice[]).includes(choice)) missing.push(`--security ${choice}`);
  if (transport === 'tls-anon' && !given.allowAnonymousTls) missing.push('--allow-anonymous-tls');
  if (inner === 'plain' && !given.username) missing.push('--username USER');
  if (inner !== 'none' && !given.password) missing.push('--password-file FILE');
  return missing;
}

function offered(choice: SecurityChoice, types: readonly unknown[], subtypes: readonly unknown[] | undefined): boolean {
  const { type, subtype } = SECURITY_CHOICES[choice];
  if (subtype === null) return types.includes(SECURITY_TYPE_NAMES[type]);
  return types.includes(SECURITY_TYPE_NAMES[type]) && subtypes !== undefined && subtypes.includes(VENCRYPT_SUBTYPE_NAMES[subtype]);
}

/**
 * The hint for RFB_ERR_NO_COMMON_SECURITY, from what the endpoint offered (`details.offeredTypes`
 * and `offeredSubtypes`, by name): the first offered choice, in the probe's order of preference,
 * and the options that would make it usable. When the endpoint asks for VNC authentication and
 * only the password is missing, that reads "the endpoint asks for a VNC password: pass
 * --password-file FILE", rather than sending the operator to change `--security`. Returns
 * undefined when nothing offered is a type vncgate speaks.
 */
export function noCommonSecurityHint(details: Readonly<Record<string, unknown>> | undefined, given: ProbeCredentials): string | undefined {
  const types = Array.isArray(details?.['offeredTypes']) ? (details['offeredTypes'] as unknown[]) : [];
  const subtypes = Array.isArray(details?.['offeredSubtypes']) ? (details['offeredSubtypes'] as unknown[]) : undefined;
  for (const choice of [...PROBE_DEFAULT_PREFERENCE, ...OTHER_CHOICES]) {
    if (!offered(choice, types, subtypes)) continue;
    const missing = missingFor(choice, given);
    if (missing.length === 0) continue;
    const inner = SECURITY_CHOICES[choice].inner;
    const asks = inner === 'none' ? `the endpoint offers ${choice}` : `the endpoint asks for ${NEEDS[inner]}`;
    return `${asks}: pass ${missing.join(' ')}`;
  }
  return undefined;
}

/**
 * The hint for RFB_ERR_CREDENTIALS_MISSING, raised before connecting when `--security` names a
 * type whose credentials were not given.
 */
export function credentialsMissingHint(given: ProbeCredentials): string | undefined {
  for (const choice of given.explicitSecurity ?? []) {
    const inner = SECURITY_CHOICES[choice].inner;
    if (inner === 'none') continue;
    const missing = missingFor(choice, given).filter((option) => !option.startsWith('--security') && option !== '--allow-anonymous-tls');
    if (missing.length > 0) return `--security ${choice} needs ${NEEDS[inner]}: pass ${missing.join(' ')}`;
  }
  return undefined;
}
