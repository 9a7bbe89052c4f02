import { parseCellDbUrl } from './db-url.js';
import type { RawConfig } from './schema.js';
import type { IronicSettings, KeystoneSettings, NovaSettings } from './types.js';

/** Reads a file named by an option; on failure records a problem and answers null. */
export type ReadFile = (what: string, path: string) => Buffer | null;

export function readSecret(readFile: ReadFile, problems: string[], what: string, path: string | null): string | null {
  if (path === null) {
    problems.push(`${what}: required`);
    return null;
  }
  const b = readFile(what, path);
  return b ? firstLine(b).toString('utf8') : null;
}

export function resolveKeystone(k: RawConfig['keystone'], readFile: ReadFile, problems: string[]): KeystoneSettings | null {
  if (k.authUrl === null) {
    problems.push('keystone.authUrl: required for keystone auth');
    return null;
  }
  if (!/^https?:\/\//.test(k.authUrl)) problems.push('keystone.authUrl: must be an http(s) URL');
  const common = { authUrl: k.authUrl, interface: k.interface, region: k.region };
  if (k.applicationCredentialId !== null) {
    const secret = readSecret(readFile, problems, 'keystone.applicationCredentialSecretFile', k.applicationCredentialSecretFile);
    return { ...common, method: 'application_credential', applicationCredentialId: k.applicationCredentialId, applicationCredentialSecret: secret ?? '' };
  }
  if (k.username === null) problems.push('keystone: username (with passwordFile and projectName) or applicationCredentialId is required');
  if (k.projectName === null) problems.push('keystone.projectName: required with a username');
  const password = readSecret(readFile, problems, 'keystone.passwordFile', k.passwordFile);
  return {
    ...common,
    method: 'password',
    username: k.username ?? '',
    password: password ?? '',
    userDomainName: k.userDomainName,
    projectName: k.projectName ?? '',
    projectDomainName: k.projectDomainName,
  };
}

export function resolveNova(
  r: RawConfig['nova'],
  profiles: ReadonlyMap<string, unknown>,
  readFile: ReadFile,
  problems: string[],
  getKeystone: () => KeystoneSettings | null,
): NovaSettings | null {
  if (!profiles.has(r.profile)) problems.push(`nova.profile: no backend profile named ${JSON.stringify(r.profile)}`);
  const dbUrls = [...r.dbUrls];
  if (r.dbUrlsFile !== null) {
    const text = readFile('nova.dbUrlsFile', r.dbUrlsFile);
    if (text) dbUrls.push(...text.toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')));
  }
  for (const u of dbUrls) {
    try {
      parseCellDbUrl(u);
    } catch {
      problems.push(`nova.dbUrls: ${redactUrl(u)} is not a mysql:// or postgres:// URL`);
    }
  }
  if (!r.enabled && r.url === null && dbUrls.length === 0) return null;
  const resolver = r.resolver === 'auto' ? (dbUrls.length > 0 ? 'db' : 'api') : r.resolver;
  if (resolver === 'db' && dbUrls.length === 0) problems.push('nova.dbUrls: required with resolver db');
  if (resolver === 'api' && r.url === null && r.auth !== 'keystone') problems.push('nova.url: required with auth noauth');
  if (r.url !== null && !/^https?:\/\//.test(r.url)) problems.push('nova.url: must be an http(s) URL');
  const ca = r.caFile !== null ? readFile('nova.caFile', r.caFile) : null;
  if (resolver === 'db' || r.auth === 'noauth') return { resolver, url: r.url, auth: { type: 'noauth' }, dbUrls: dbUrls, ca };
  const k = getKeystone();
  return { resolver, url: r.url, auth: k ? { type: 'keystone', serviceType: r.serviceType, ...k } : { type: 'noauth' }, dbUrls: dbUrls, ca };
}

/** A database URL without its password, for messages. */
export function redactUrl(u: string): string {
  return u.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

export function resolveIronic(
  r: RawConfig['ironic'],
  profiles: ReadonlyMap<string, unknown>,
  readFile: ReadFile,
  problems: string[],
  getKeystone: () => KeystoneSettings | null,
): IronicSettings | null {
  for (const [where, map] of [
    ['ironic.profilesByNode', r.profilesByNode],
    ['ironic.profilesByConsoleInterface', r.profilesByConsoleInterface],
    ['ironic.profilesByDriver', r.profilesByDriver],
  ] as const) {
    for (const [k, v] of Object.entries(map)) if (!profiles.has(v)) problems.push(`${where}.${k}: no backend profile named ${JSON.stringify(v)}`);
  }
  if (!profiles.has(r.defaultProfile)) problems.push(`ironic.defaultProfile: no backend profile named ${JSON.stringify(r.defaultProfile)}`);
  if (r.url === null && r.auth !== 'keystone') return null;
  if (r.url !== null && !/^https?:\/\//.test(r.url)) problems.push('ironic.url: must be an http(s) URL');
  const ca = r.caFile !== null ? readFile('ironic.caFile', r.caFile) : null;
  if (r.auth === 'none') return { url: r.url, auth: { type: 'none' }, ca };
  if (r.auth === 'http_basic') {
    if (r.username === null) problems.push('ironic.username: required for http_basic');
    const password = readSecret(readFile, problems, 'ironic.passwordFile', r.passwordFile);
    return { url: r.url, auth: { type: 'http_basic', username: r.username ?? '', password: password ?? '' }, ca };
  }
  const k = getKeystone();
  return k ? { url: r.url, auth: { type: 'keystone', serviceType: r.serviceType, ...k }, ca } : null;
}

/** A secret file's first line, without its line ending: what every *File secret means. */
export function firstLine(b: Buffer): Buffer {
  const nl = b.indexOf(0x0a);
  const line = nl === -1 ? b : b.subarray(0, nl);
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}
