import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureDevCertificate } from '../../tools/cli/dev-cert.js';
import { importIronicConf, importNovaConf } from '../../src/config/import.js';
import { iniBool, iniList, parseIni } from '../../src/config/ini.js';
import { loadConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vncgate-import-'));
const f = (name: string, text = 'x') => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
// A real pair: loadConfig checks that the key belongs to the certificate.
const devCert = ensureDevCertificate(join(dir, 'dev'));
const cert = f('proxy.crt', readFileSync(devCert.certFile, 'utf8'));
const key = f('proxy.key', readFileSync(devCert.keyFile, 'utf8'));
const ca = f('vencrypt-ca.pem');
const ccert = f('vencrypt-client.crt');
const ckey = f('vencrypt-client.key');

/** A typical controller's nova.conf as deployment tools write it (our own example). */
const NOVA_CONF = `
[DEFAULT]
debug = False
transport_url = rabbit://openstack:secret@controller:5672/
ssl_only = True
cert = ${cert}
key = ${key}
record = /var/log/nova/vnc-record

[api_database]
connection = mysql+pymysql://nova:novapass@controller/nova_api

[database]
connection = mysql+pymysql://nova:novapass@controller/nova_cell1?charset=utf8

[vnc]
enabled = true
novncproxy_host = 0.0.0.0
novncproxy_port = 6080
novncproxy_base_url = https://cloud.example.com:6080/vnc_lite.html
auth_schemes = vencrypt,none
vencrypt_ca_certs = ${ca}
vencrypt_client_cert = ${ccert}
vencrypt_client_key = ${ckey}

[console]
allowed_origins = horizon.example.com,
    dashboard.example.com
ssl_minimum_version = tlsv1_2

[consoleauth]
token_ttl = 600
enforce_session_timeout = True

[keystone_authtoken]
www_authenticate_uri = https://keystone.example.com:5000
auth_url = https://keystone.example.com:5000
username = nova
password = novapass
project_name = service
user_domain_name = Default
project_domain_name = Default
`;

const IRONIC_CONF = `
[DEFAULT]
auth_strategy = http_basic
http_basic_auth_user_file = /etc/ironic/htpasswd
my_ip = 10.0.0.2

[api]
host_ip = 0.0.0.0
port = 6385

[vnc]
enabled = True
host_ip = ::
port = 6090
public_url = https://console.example.com:6090/vnc_lite.html
enable_ssl = True
cert_file = ${cert}
key_file = ${key}
tls_minimum_version = 1.3
token_timeout = 900
novnc_record = /var/log/ironic/record
container_provider = systemd

[cors]
allowed_origin = https://horizon.example.com
`;

describe('oslo.config INI reading', () => {
  it('reads sections, continuation lines, comments and booleans', () => {
    const ini = parseIni('[a]\n# c\nx = 1\nlist = one,\n  two\n; c2\n[b]\nflag: True\n');
    expect(ini.get('a')?.get('x')).toBe('1');
    expect(iniList(ini.get('a')?.get('list'))).toEqual(['one', 'two']);
    expect(iniBool(ini.get('b')?.get('flag'))).toBe(true);
  });
});

describe('vncgate config import', () => {
  it('turns a typical nova.conf into a working vncgate configuration', () => {
    const { config, warnings } = importNovaConf(parseIni(NOVA_CONF));
    expect(config).toMatchObject({
      listen: ['0.0.0.0:6080'],
      tls: { certFile: cert, keyFile: key },
      publicUrl: 'https://cloud.example.com:6080/',
      origins: { allowed: ['https://horizon.example.com', 'https://dashboard.example.com'] },
      nova: { resolver: 'db', dbUrlsFile: '/etc/vncgate/nova-db-urls', enforceSessionTimeout: true, profile: 'nova-vencrypt' },
      backends: { profiles: { 'nova-vencrypt': { security: ['vencrypt-x509none', 'none'], caFile: ca, certFile: ccert, keyFile: ckey } } },
    });
    expect(warnings.join('\n')).toMatch(/\[DEFAULT\] record: no vncgate equivalent/);
    expect(warnings.join('\n')).toMatch(/nova-manage cell_v2 list_cells/);
    // The cell database password never reaches the YAML (nor the warnings).
    expect(JSON.stringify(config)).not.toContain('novapass');
    expect(warnings.join('\n')).not.toContain('novapass');
    expect(warnings.join('\n')).toMatch(/allowed_origins/);
    // What it prints is YAML vncgate accepts as it is.
    const urls = f('nova-db-urls', '# cells\nmysql+pymysql://nova:novapass@controller/nova_cell1?charset=utf8\n');
    const cfg = structuredClone(config) as { nova: { dbUrlsFile: string } };
    cfg.nova.dbUrlsFile = urls;
    const yamlFile = f('from-nova.yaml', JSON.stringify(cfg));
    const loaded = loadConfig({ file: yamlFile, env: {} });
    expect(loaded.nova?.dbUrls).toEqual(['mysql+pymysql://nova:novapass@controller/nova_cell1?charset=utf8']);
    expect(loaded.nova?.resolver).toBe('db');
    expect(loaded.profiles.get('nova-vencrypt')?.security).toEqual(['vencrypt-x509none', 'none']);
    expect(parse(JSON.stringify(cfg))).toEqual(cfg);
  });

  it('nova.conf without a database uses the API resolver with Keystone, secrets left to files', () => {
    const text = NOVA_CONF.replace(/\[database\][^[]*/, '');
    const { config, warnings } = importNovaConf(parseIni(text));
    expect(config).toMatchObject({
      nova: { resolver: 'api', enabled: true },
      keystone: { authUrl: 'https://keystone.example.com:5000/v3', username: 'nova', passwordFile: '/etc/vncgate/keystone-password', projectName: 'service' },
    });
    expect(JSON.stringify(config)).not.toContain('novapass');
    expect(warnings.join('\n')).toMatch(/password: put it in \/etc\/vncgate\/keystone-password/);
  });

  it('plain-HTTP nova-novncproxy becomes an explicit plainHttp with a warning', () => {
    const { config, warnings } = importNovaConf(parseIni('[vnc]\nnovncproxy_port = 6081\n'));
    expect(config).toMatchObject({ listen: ['0.0.0.0:6081'], tls: { plainHttp: true } });
    expect(warnings.some((w) => w.includes('plain HTTP'))).toBe(true);
  });

  it('turns a typical ironic.conf into a working vncgate configuration', () => {
    const { config, warnings } = importIronicConf(parseIni(IRONIC_CONF));
    expect(config).toMatchObject({
      listen: ['[::]:6090'],
      tls: { certFile: cert, keyFile: key, minVersion: 'TLSv1.3' },
      publicUrl: 'https://console.example.com:6090/',
      origins: { allowed: ['https://horizon.example.com'] },
      ironic: { url: 'http://10.0.0.2:6385', auth: 'http_basic', username: 'vncgate', passwordFile: '/etc/vncgate/ironic-password', ironicTokenTtlSeconds: 900 },
    });
    const text = warnings.join('\n');
    expect(text).toMatch(/novnc_record: no vncgate equivalent/);
    expect(text).toMatch(/htpasswd/);
    const pw = f('ironic-password', 'secret\n');
    const cfg = structuredClone(config) as { ironic: { passwordFile: string } };
    cfg.ironic.passwordFile = pw;
    const loaded = loadConfig({ file: f('from-ironic.yaml', JSON.stringify(cfg)), env: {} });
    expect(loaded.ironic?.auth).toEqual({ type: 'http_basic', username: 'vncgate', password: 'secret' });
  });
});
