import { readFileSync } from 'node:fs';
import type { BackendSecurity } from '../target.js';
import { AddressSet, compileAddressSet, compileTargetPolicy, TargetPolicy } from '../target-policy.js';
import { firstLine, resolveIronic, resolveKeystone, resolveNova, type ReadFile } from './openstack-settings.js';
import type { RawConfig } from './schema.js';
import { checkTlsPair } from './tls-pair.js';
import { resolveRedis } from './redis-settings.js';
import type { Config, KeystoneSettings, ListenAddress, LoadPurpose } from './types.js';

/** Parses "host:port", "[v6]:port" or ":port" (all interfaces). */
export function parseListen(s: string): ListenAddress | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]*):(\d{1,5})$/.exec(s);
  if (!m || m[2] === undefined) return null;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return null;
  return { host: m[1] === '' || m[1] === undefined ? '0.0.0.0' : m[1], port };
}

/**
 * Everything the schema cannot say: addresses and URLs parse, files are readable (and read),
 * names refer to something, options agree with each other. Records every problem in `problems`
 * and returns the resolved configuration (not yet frozen; meaningful only without problems).
 *
 * `purpose: 'tokens'` (the token commands) resolves only what minting needs: no listener TLS
 * material, JWT keys or OpenStack credentials are read, so those files need not exist where
 * tokens are minted.
 */
export function resolveConfig(raw: RawConfig, source: string | null, purpose: LoadPurpose, problems: string[]): Config {
  const serving = purpose === 'serve';

  const listen: ListenAddress[] = [];
  for (const l of raw.listen) {
    const a = parseListen(l);
    if (a) listen.push(a);
    else problems.push(`listen: ${JSON.stringify(l)} is not host:port or [ipv6]:port`);
  }
  const { listenProxyProtocol, trustedProxies } = resolveProxies(raw, listen, problems);

  const readFile: ReadFile = (what, path) => (serving ? readAny(what, path) : null);
  const readAny: ReadFile = (what, path) => {
    try {
      return readFileSync(path);
    } catch (err) {
      problems.push(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return null;
    }
  };

  let tls: Config['tls'] = null;
  if (serving && !raw.tls.plainHttp) {
    if (!raw.tls.certFile || !raw.tls.keyFile) {
      problems.push('tls: certFile and keyFile are required (or set tls.plainHttp: true behind a TLS-terminating proxy)');
    } else {
      const { certFile, keyFile, minVersion, ciphers, watchFiles } = raw.tls;
      const cert = readFile('tls.certFile', certFile);
      const key = readFile('tls.keyFile', keyFile);
      const pair = cert && key ? checkTlsPair(cert, key, { minVersion, ciphers }) : null;
      if (pair && !pair.ok) {
        const path = pair.option === 'certFile' ? ` ${certFile}:` : pair.option === 'keyFile' ? ` ${keyFile}:` : '';
        problems.push(`tls.${pair.option}:${path} ${pair.problem}`);
      }
      if (cert && key && pair?.ok) tls = { cert, key, certFile, keyFile, minVersion, ciphers, watchFiles };
    }
  }

  if (raw.publicUrl !== null) {
    try {
      const u = new URL(raw.publicUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push('publicUrl: must be an http(s) URL');
    } catch {
      problems.push(`publicUrl: ${JSON.stringify(raw.publicUrl)} is not a URL`);
    }
  }
  if (raw.tokens.defaultTtlSeconds > raw.tokens.maxTtlSeconds) problems.push('tokens.defaultTtlSeconds: exceeds tokens.maxTtlSeconds');
  for (const o of raw.origins.allowed) {
    try {
      const u = new URL(o);
      if (u.origin !== o.replace(/\/$/, '')) problems.push(`origins.allowed: ${JSON.stringify(o)} must be a bare origin like https://host[:port]`);
    } catch {
      problems.push(`origins.allowed: ${JSON.stringify(o)} is not an origin`);
    }
  }

  const profiles = new Map<string, BackendSecurity>();
  const hostnameCheckDisabled: string[] = [];
  if (!Object.hasOwn(raw.backends.profiles, 'none')) profiles.set('none', { security: ['none'] });
  for (const [name, p] of Object.entries(raw.backends.profiles)) {
    const where = `backends.profiles.${name}`;
    const password = p.passwordFile !== undefined ? readFile(`${where}.passwordFile`, p.passwordFile) : null;
    const needsPassword = p.security.some((s) => s !== 'none' && !s.endsWith('none'));
    const needsUser = p.security.some((s) => s.endsWith('plain'));
    if (needsPassword && p.passwordFile === undefined) problems.push(`${where}: security ${p.security.join(',')} needs passwordFile`);
    if (needsUser && p.username === undefined) problems.push(`${where}: Plain security types need username`);
    if ((p.certFile === undefined) !== (p.keyFile === undefined)) problems.push(`${where}: certFile and keyFile go together`);
    const anon = p.security.filter((s) => s.startsWith('vencrypt-tls'));
    if (anon.length > 0 && !p.allowAnonymousTls) problems.push(`${where}: ${anon.join(',')} need allowAnonymousTls: true (unauthenticated TLS)`);
    const ca = p.caFile !== undefined ? readFile(`${where}.caFile`, p.caFile) : null;
    const cert = p.certFile !== undefined ? readFile(`${where}.certFile`, p.certFile) : null;
    const key = p.keyFile !== undefined ? readFile(`${where}.keyFile`, p.keyFile) : null;
    if (!p.verifyHostname) hostnameCheckDisabled.push(name);
    if (p.record && raw.recordings.dir === null) problems.push(`${where}: record needs recordings.dir`);
    // A shared console's viewers read the hub's stream, which no recorder taps: refuse rather than record nothing.
    if (p.record && p.sharing) problems.push(`${where}: record and sharing cannot both be on (shared consoles are not recorded)`);
    profiles.set(name, {
      security: p.security,
      ...(password ? { password: firstLine(password) } : {}),
      ...(p.username !== undefined ? { username: p.username } : {}),
      tls: {
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        verifyHostname: p.verifyHostname,
        ...(p.servername !== undefined ? { servername: p.servername } : {}),
        allowAnonymous: p.allowAnonymousTls,
      },
    });
  }
  const compiledPolicy = compileTargetPolicy(raw.backends.allowedTargets);
  if (!compiledPolicy.ok) problems.push(...compiledPolicy.problems);
  const targetPolicy = compiledPolicy.ok ? compiledPolicy.policy : new TargetPolicy([]);
  if (!profiles.has(raw.backends.defaultProfile)) problems.push(`backends.defaultProfile: no profile named ${JSON.stringify(raw.backends.defaultProfile)}`);

  let jwt: Config['jwt'] = null;
  const j = raw.api.jwt;
  if (serving && (j.hs256SecretFile !== null || j.jwksFile !== null || j.jwksUrl !== null)) {
    const secret = j.hs256SecretFile !== null ? readFile('api.jwt.hs256SecretFile', j.hs256SecretFile) : null;
    if (secret && firstLine(secret).length < 32) problems.push('api.jwt.hs256SecretFile: the secret must be at least 32 bytes');
    let jwks: unknown = null;
    if (j.jwksFile !== null) {
      const text = readFile('api.jwt.jwksFile', j.jwksFile);
      if (text) {
        try {
          jwks = JSON.parse(text.toString('utf8'));
          if (!jwks || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new Error('no "keys" array');
        } catch (err) {
          problems.push(`api.jwt.jwksFile: not a JWK set (${(err as Error).message})`);
        }
      }
    }
    if (j.jwksUrl !== null && !/^https?:\/\//.test(j.jwksUrl)) problems.push('api.jwt.jwksUrl: must be an http(s) URL');
    if (j.issuer === null) problems.push('api.jwt.issuer: required when the token API is enabled');
    if (j.audience === null) problems.push('api.jwt.audience: required when the token API is enabled');
    jwt = {
      hs256Secret: secret ? firstLine(secret) : null,
      jwks,
      jwksUrl: j.jwksUrl,
      issuer: j.issuer,
      audience: j.audience,
      clockToleranceSeconds: j.clockToleranceSeconds,
      maxLifetimeSeconds: j.maxLifetimeSeconds,
    };
  }

  let keystone: KeystoneSettings | null | undefined;
  const getKeystone = (): KeystoneSettings | null => (keystone ??= resolveKeystone(raw.keystone, readFile, problems));
  const ironic = serving ? resolveIronic(raw.ironic, profiles, readFile, problems, getKeystone) : null;
  const nova = serving ? resolveNova(raw.nova, profiles, readFile, problems, getKeystone) : null;

  /** Where GET /metrics listens, or null (metrics off). */
  let metricsListen: ListenAddress | null = null;
  if (raw.metrics.listen !== null) {
    metricsListen = parseListen(raw.metrics.listen);
    if (!metricsListen) problems.push(`metrics.listen: ${JSON.stringify(raw.metrics.listen)} is not host:port or [ipv6]:port`);
  }
  // The token commands need Redis too: its credentials are read for every purpose.
  const redis = resolveRedis(raw.redis, readAny, problems);
  return { raw, source, listen, listenProxyProtocol, trustedProxies, metricsListen, tls, publicUrl: raw.publicUrl, profiles, targetPolicy, hostnameCheckDisabled, ironic, nova, redis, jwt };
}

/** listenProxyProtocol and trustedProxies, and how they agree with listen and the old origins.trustForwardedHeaders. */
function resolveProxies(raw: RawConfig, listen: readonly ListenAddress[], problems: string[]): { listenProxyProtocol: ListenAddress[]; trustedProxies: AddressSet } {
  const listenProxyProtocol: ListenAddress[] = [];
  for (const l of raw.listenProxyProtocol) {
    const a = parseListen(l);
    if (!a) problems.push(`listenProxyProtocol: ${JSON.stringify(l)} is not host:port or [ipv6]:port`);
    else if (a.port !== 0 && listen.some((p) => p.host === a.host && p.port === a.port)) {
      problems.push(`listenProxyProtocol: ${l} is also in listen; a listener either expects a PROXY header or does not`);
    } else listenProxyProtocol.push(a);
  }
  const compiled = compileAddressSet('trustedProxies', raw.trustedProxies);
  if (!compiled.ok) problems.push(...compiled.problems);
  const trustedProxies = compiled.ok ? compiled.set : new AddressSet([]);
  if (raw.listenProxyProtocol.length > 0 && raw.trustedProxies.length === 0) {
    problems.push('listenProxyProtocol: needs trustedProxies (the load balancers allowed to send PROXY headers); without it every connection would be refused');
  }
  if (raw.origins.trustForwardedHeaders && raw.trustedProxies.length > 0) {
    problems.push('origins.trustForwardedHeaders: trusts X-Forwarded-* from any address; remove it when trustedProxies names the proxies');
  }
  return { listenProxyProtocol, trustedProxies };
}
