import { iniBool, iniGet, iniList, type Ini } from './ini.js';

/** A vncgate configuration document (YAML-ready) and what could not be carried over. */
export type ImportResult = { config: Record<string, unknown>; warnings: string[] };

function hostPort(host: string | undefined, port: string | undefined, defaultPort: number): string {
  const h = host ?? '0.0.0.0';
  const p = port ?? String(defaultPort);
  return h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`;
}

/** The origin (and directory) of a page URL, as vncgate's publicUrl: https://host:port/prefix/. */
function baseOf(url: string | undefined, warnings: string[], option: string): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    const dir = u.pathname.replace(/[^/]*$/, '');
    return `${u.origin}${dir}`;
  } catch {
    warnings.push(`${option}: ${JSON.stringify(url)} is not a URL; publicUrl left unset`);
    return undefined;
  }
}

/** Hostname lists (Nova, Ironic) become origins: vncgate compares scheme, host and port. */
function originsFrom(entries: string[], scheme: string, warnings: string[], option: string): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (/^[a-z]+:\/\//i.test(e)) {
      try {
        out.push(new URL(e).origin);
        continue;
      } catch {
        warnings.push(`${option}: ${JSON.stringify(e)} is not an origin; skipped`);
        continue;
      }
    }
    out.push(`${scheme}://${e}`);
  }
  if (entries.some((e) => !/^[a-z]+:\/\//i.test(e))) {
    warnings.push(`${option}: upstream compares hostnames only; vncgate compares whole origins, so each was turned into ${scheme}://host — add :port where the embedding page uses one`);
  }
  return out;
}

function keystoneFrom(ini: Ini, warnings: string[], secretPath: string): Record<string, unknown> | undefined {
  const k = 'keystone_authtoken';
  const authUrl = iniGet(ini, k, 'auth_url') ?? iniGet(ini, k, 'www_authenticate_uri');
  if (!authUrl) return undefined;
  const out: Record<string, unknown> = { authUrl: authUrl.replace(/\/+$/, '').replace(/\/v3$/, '') + '/v3' };
  const appId = iniGet(ini, k, 'application_credential_id');
  if (appId) {
    out.applicationCredentialId = appId;
    out.applicationCredentialSecretFile = secretPath;
    warnings.push(`[${k}] application_credential_secret: put it in ${secretPath} (vncgate reads secrets from files only)`);
  } else {
    const user = iniGet(ini, k, 'username');
    if (user) out.username = user;
    if (iniGet(ini, k, 'password')) {
      out.passwordFile = secretPath;
      warnings.push(`[${k}] password: put it in ${secretPath} (vncgate reads secrets from files only)`);
    }
    const project = iniGet(ini, k, 'project_name');
    if (project) out.projectName = project;
    const ud = iniGet(ini, k, 'user_domain_name');
    if (ud) out.userDomainName = ud;
    const pd = iniGet(ini, k, 'project_domain_name');
    if (pd) out.projectDomainName = pd;
  }
  const region = iniGet(ini, k, 'region_name');
  if (region) out.region = region;
  return out;
}

/** nova.conf → vncgate configuration serving Nova's noVNC console URLs. */
export function importNovaConf(ini: Ini): ImportResult {
  const w: string[] = [];
  const c: Record<string, unknown> = {};
  c.listen = [hostPort(iniGet(ini, 'vnc', 'novncproxy_host'), iniGet(ini, 'vnc', 'novncproxy_port'), 6080)];

  const cert = iniGet(ini, 'DEFAULT', 'cert');
  const key = iniGet(ini, 'DEFAULT', 'key');
  const sslOnly = iniBool(iniGet(ini, 'DEFAULT', 'ssl_only')) ?? false;
  const tls: Record<string, unknown> = {};
  if (cert && (sslOnly || key)) {
    tls.certFile = cert;
    // websockify reads the key from the cert file when [DEFAULT] key is unset.
    tls.keyFile = key ?? cert;
    if (!sslOnly) w.push('[DEFAULT] ssl_only = False: nova-novncproxy also accepted plain HTTP; vncgate serves TLS only on this listener');
  } else {
    tls.plainHttp = true;
    w.push('[DEFAULT] ssl_only/cert: nova-novncproxy served plain HTTP; so does this config (tls.plainHttp) — put vncgate behind TLS or set tls.certFile/keyFile');
  }
  const minV = iniGet(ini, 'console', 'ssl_minimum_version');
  if (minV === 'tlsv1_3') tls.minVersion = 'TLSv1.3';
  else if (minV === 'tlsv1_1') w.push('[console] ssl_minimum_version = tlsv1_1: vncgate never goes below TLS 1.2');
  const ciphers = iniGet(ini, 'console', 'ssl_ciphers');
  if (ciphers) tls.ciphers = ciphers;
  c.tls = tls;

  const base = iniGet(ini, 'vnc', 'novncproxy_base_url');
  const publicUrl = baseOf(base, w, '[vnc] novncproxy_base_url');
  if (publicUrl) c.publicUrl = publicUrl;
  const scheme = base?.startsWith('http:') ? 'http' : 'https';
  const allowed = iniList(iniGet(ini, 'console', 'allowed_origins'));
  if (allowed.length > 0) c.origins = { allowed: originsFrom(allowed, scheme, w, '[console] allowed_origins') };

  const nova: Record<string, unknown> = {};
  const db = iniGet(ini, 'database', 'connection');
  if (db) {
    // The URL carries the database password: it goes in a file, never into the YAML.
    nova.dbUrlsFile = '/etc/vncgate/nova-db-urls';
    nova.resolver = 'db';
    w.push(`[database] connection: put this URL (it holds a password) on a line of /etc/vncgate/nova-db-urls, mode 0600: ${db.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')}`);
    w.push('[database] connection: only this cell was imported; add every cell database (nova-manage cell_v2 list_cells) to /etc/vncgate/nova-db-urls, one per line');
  } else {
    nova.enabled = true;
    nova.resolver = 'api';
    const ks = keystoneFrom(ini, w, '/etc/vncgate/keystone-password');
    if (ks) c.keystone = ks;
    else w.push('no [database] connection and no [keystone_authtoken]: set nova.url and keystone credentials (the token API needs an admin user)');
  }
  const enforce = iniBool(iniGet(ini, 'consoleauth', 'enforce_session_timeout'));
  if (enforce) {
    nova.enforceSessionTimeout = true;
    if (!db) w.push('[consoleauth] enforce_session_timeout: needs the db resolver (the API does not return expiry)');
  }

  const schemes = iniList(iniGet(ini, 'vnc', 'auth_schemes'));
  if (schemes.includes('vencrypt')) {
    const profile: Record<string, unknown> = {
      // Nova takes the first of auth_schemes in the *server's* order; vncgate prefers X509 when both are allowed.
      security: schemes.includes('none') ? ['vencrypt-x509none', 'none'] : ['vencrypt-x509none'],
    };
    const ca = iniGet(ini, 'vnc', 'vencrypt_ca_certs');
    const ccert = iniGet(ini, 'vnc', 'vencrypt_client_cert');
    const ckey = iniGet(ini, 'vnc', 'vencrypt_client_key');
    if (ca) profile.caFile = ca;
    if (ccert && ckey) {
      profile.certFile = ccert;
      profile.keyFile = ckey;
    } else if (ccert || ckey) w.push('[vnc] vencrypt_client_cert/vencrypt_client_key: only one is set; no client certificate is presented');
    w.push('[vnc] auth_schemes vencrypt: Nova never checks the compute host certificate name; vncgate does (verifyHostname) — set verifyHostname: false in backends.profiles.nova-vencrypt if compute certificates do not name the host');
    c.backends = { profiles: { 'nova-vencrypt': profile } };
    nova.profile = 'nova-vencrypt';
  }
  c.nova = nova;

  for (const [section, option, why] of [
    ['DEFAULT', 'record', 'session recording captures keystrokes (passwords) in plain files; not supported'],
    ['DEFAULT', 'web', 'vncgate serves its own bundled noVNC page'],
    ['DEFAULT', 'daemon', 'run vncgate under systemd or a container runtime'],
    ['DEFAULT', 'source_is_ipv6', 'vncgate listens on every address in listen (IPv4 and IPv6)'],
    ['consoleauth', 'token_ttl', 'Nova issues and expires its tokens; nothing to set in vncgate'],
  ] as const) {
    if (iniGet(ini, section, option) !== undefined) w.push(`[${section}] ${option}: no vncgate equivalent — ${why}`);
  }
  return { config: c, warnings: w };
}

/** ironic.conf → vncgate configuration serving Ironic's node console URLs. */
export function importIronicConf(ini: Ini): ImportResult {
  const w: string[] = [];
  const c: Record<string, unknown> = {};
  if (iniBool(iniGet(ini, 'vnc', 'enabled')) !== true) w.push('[vnc] enabled is not True: Ironic issues no graphical console URLs until it is');
  c.listen = [hostPort(iniGet(ini, 'vnc', 'host_ip'), iniGet(ini, 'vnc', 'port'), 6090)];

  const tls: Record<string, unknown> = {};
  if (iniBool(iniGet(ini, 'vnc', 'enable_ssl'))) {
    const cert = iniGet(ini, 'vnc', 'cert_file') ?? iniGet(ini, 'vnc', 'ssl_cert_file');
    const key = iniGet(ini, 'vnc', 'key_file') ?? iniGet(ini, 'vnc', 'ssl_key_file');
    if (cert) tls.certFile = cert;
    if (key) tls.keyFile = key ?? cert;
    const min = iniGet(ini, 'vnc', 'tls_minimum_version') ?? iniGet(ini, 'vnc', 'ssl_minimum_version');
    // Upstream maps both '1.2' and '1.3' to TLS 1.3 only (a websockify quirk); vncgate does what the option says.
    if (min === '1.3') tls.minVersion = 'TLSv1.3';
    const ciphers = iniGet(ini, 'vnc', 'tls_ciphers') ?? iniGet(ini, 'vnc', 'ssl_ciphers');
    if (ciphers) tls.ciphers = ciphers;
  } else {
    tls.plainHttp = true;
    w.push('[vnc] enable_ssl = False: ironic-novncproxy served plain HTTP; so does this config (tls.plainHttp) — prefer tls.certFile/keyFile');
  }
  c.tls = tls;

  const pub = iniGet(ini, 'vnc', 'public_url');
  const publicUrl = baseOf(pub, w, '[vnc] public_url');
  if (publicUrl) c.publicUrl = publicUrl;
  else w.push('[vnc] public_url is unset: Ironic builds broken console URLs ("None?path=…") until it points at vncgate');
  const allowed = iniList(iniGet(ini, 'cors', 'allowed_origin'));
  if (allowed.length > 0) c.origins = { allowed: originsFrom(allowed, pub?.startsWith('http:') ? 'http' : 'https', w, '[cors] allowed_origin') };

  const ironic: Record<string, unknown> = {};
  const apiHost = iniGet(ini, 'api', 'host_ip');
  const apiPort = iniGet(ini, 'api', 'port') ?? '6385';
  const apiTls = iniBool(iniGet(ini, 'api', 'enable_ssl_api')) ?? false;
  const myIp = iniGet(ini, 'DEFAULT', 'my_ip');
  const host = apiHost && apiHost !== '0.0.0.0' && apiHost !== '::' ? apiHost : (myIp ?? '127.0.0.1');
  ironic.url = `${apiTls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${apiPort}`;
  if (!apiHost || apiHost === '0.0.0.0' || apiHost === '::') w.push(`[api] host_ip: the API listens on all addresses; ironic.url uses ${host} — check vncgate can reach it there`);
  const strategy = iniGet(ini, 'DEFAULT', 'auth_strategy') ?? 'keystone';
  if (strategy === 'noauth') ironic.auth = 'none';
  else if (strategy === 'http_basic') {
    ironic.auth = 'http_basic';
    ironic.username = 'vncgate';
    ironic.passwordFile = '/etc/vncgate/ironic-password';
    w.push(`[DEFAULT] auth_strategy = http_basic: add a vncgate user to ${iniGet(ini, 'DEFAULT', 'http_basic_auth_user_file') ?? '/etc/ironic/htpasswd'} and put its password in /etc/vncgate/ironic-password`);
  } else {
    ironic.auth = 'keystone';
    const ks = keystoneFrom(ini, w, '/etc/vncgate/keystone-password');
    if (ks) c.keystone = ks;
    else w.push('[keystone_authtoken]: no auth_url; fill in the keystone section (a user with baremetal:node:get_console)');
    delete ironic.url;
    w.push('auth_strategy keystone: ironic.url is taken from the Keystone catalog; set it to pin an endpoint');
  }
  const ttl = Number(iniGet(ini, 'vnc', 'token_timeout') ?? '600');
  if (Number.isInteger(ttl) && ttl >= 60) ironic.ironicTokenTtlSeconds = ttl;
  const schemes = iniList(iniGet(ini, 'vnc', 'novnc_auth_schemes'));
  if (schemes.some((s) => s !== 'none')) w.push(`[vnc] novnc_auth_schemes ${schemes.join(',')}: only none exists upstream; kept as ironic.defaultProfile none`);
  c.ironic = ironic;

  for (const [section, option, why] of [
    ['vnc', 'novnc_record', 'session recording captures keystrokes (passwords) in plain files; not supported'],
    ['vnc', 'novnc_web', 'vncgate serves its own bundled noVNC page'],
  ] as const) {
    if (iniGet(ini, section, option) !== undefined) w.push(`[${section}] ${option}: no vncgate equivalent — ${why}`);
  }
  return { config: c, warnings: w };
}
