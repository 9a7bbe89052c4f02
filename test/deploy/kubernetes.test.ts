import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BlockList } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { ensureDevCertificate } from '../../tools/cli/dev-cert.js';
import { CONFIG_SCHEMA, loadConfig, parseListen, type Config } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';

/**
 * deploy/kubernetes (issue 17): every object is valid against the Kubernetes API schemas, and the
 * manifests agree with vncgate itself: the ConfigMap loads with loadConfig from the files the
 * Secrets project, ports and probe routes are the ones vncgate serves, the grace period outlasts
 * preStop plus the drain, and the NetworkPolicy lets through every address the config names.
 */
const root = new URL('../../', import.meta.url);
const dir = new URL('deploy/kubernetes/', root);
const read = (name: string): string => readFileSync(new URL(name, dir), 'utf8');

type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

const kustomization = parseYaml(read('kustomization.yaml')) as { namespace: string; resources: string[]; images: { name: string }[] };
const objects: KubeObject[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(read(file)).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return d.toJS() as KubeObject;
  }),
);
function one<T>(kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as unknown as T;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/**
 * Every field name the Kubernetes schemas know. The schemas leave additionalProperties open, so a
 * misspelt field (`readinesProbe`) would pass validate() and be dropped by the API server; this
 * catches it. Names are read from kubernetes-models' compiled validators.
 */
const KNOWN_FIELDS = (() => {
  const models = createRequire(import.meta.url).resolve('kubernetes-models');
  // ObjectMeta, LabelSelector and the like come from the apimachinery package beside it.
  const apimachinery = createRequire(models).resolve('@kubernetes-models/apimachinery');
  const names = new Set<string>();
  for (const schemas of [models, apimachinery].map((p) => join(dirname(p), '_schemas'))) {
    for (const f of readdirSync(schemas).filter((n) => n.endsWith('.mjs'))) {
      for (const m of readFileSync(join(schemas, f), 'utf8').matchAll(/(?:parentDataProperty|missingProperty):"([^"]+)"/g)) names.add(m[1]!);
    }
  }
  return names;
})();
/** Maps whose keys are the user's own (labels, ConfigMap data, resource names). */
const FREE_FORM = new Set(['labels', 'annotations', 'matchLabels', 'data', 'stringData', 'binaryData', 'requests', 'limits', 'nodeSelector']);

/** The same, by path, where a field name is free-form in one kind only (a Service's selector is a map). */
const FREE_FORM_PATHS: Record<string, string[]> = { Service: ['spec.selector'] };

function unknownFields(value: unknown, freeFormPaths: string[], path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, freeFormPaths, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const at = path === '' ? k : `${path}.${k}`;
    if (!KNOWN_FIELDS.has(k)) return [at];
    return FREE_FORM.has(k) || freeFormPaths.includes(at) ? [] : unknownFields(v, freeFormPaths, at);
  });
}

function validateObject(o: KubeObject): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(structuredClone(o) as never).validate();
  const unknown = unknownFields(o, FREE_FORM_PATHS[o.kind] ?? []);
  if (unknown.length > 0) throw new Error(`${o.kind} ${o.metadata.name}: unknown fields ${unknown.join(', ')}`);
}

type Pod = {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    automountServiceAccountToken: boolean;
    serviceAccountName: string;
    terminationGracePeriodSeconds: number;
    securityContext: Record<string, unknown>;
    containers: IContainer[];
    volumes: { name: string; configMap?: { name: string }; projected?: { sources: { secret: { name: string; items: { key: string; path: string }[] } }[] } }[];
  };
};
const deployment = one<{ spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: Pod } }>('Deployment');
const pod = deployment.spec.template;
const container = pod.spec.containers.find((c) => c.name === 'vncgate')!;
const containerPort = (name: string): number => container.ports!.find((p) => p.name === name)!.containerPort;
const mountOf = (volume: string): string => container.volumeMounts!.find((m) => m.name === volume)!.mountPath;
const configMap = one<{ metadata: { name: string }; data: Record<string, string> }>('ConfigMap');
const configText = configMap.data['vncgate.yaml']!;

/** The projected /run/secrets volume as files: path inside the volume → content from the Secrets. */
function projectedSecretFiles(): Map<string, string> {
  const volume = pod.spec.volumes.find((v) => v.name === 'secrets')!;
  const files = new Map<string, string>();
  for (const { secret } of volume.projected!.sources) {
    const s = one<{ data?: Record<string, string>; stringData?: Record<string, string> }>('Secret', secret.name);
    for (const item of secret.items) {
      const value = s.stringData?.[item.key] ?? (s.data?.[item.key] !== undefined ? Buffer.from(s.data[item.key]!, 'base64').toString() : undefined);
      if (value === undefined) throw new Error(`Secret ${secret.name} has no key ${item.key}`);
      files.set(item.path, value);
    }
  }
  return files;
}

/** Loads the ConfigMap's vncgate.yaml with the secret mount's files laid out under a temp dir. */
function loadShippedConfig(files: Map<string, string>, scratch: string): Config {
  const mount = mountOf('secrets');
  const secretsDir = mkdtempSync(join(scratch, 'secrets-'));
  for (const [path, content] of files) {
    mkdirSync(dirname(join(secretsDir, path)), { recursive: true });
    writeFileSync(join(secretsDir, path), content);
  }
  const file = join(scratch, 'vncgate.yaml');
  writeFileSync(file, configText.replaceAll(`${mount}/`, `${secretsDir}/`));
  return loadConfig({ file, env: {} });
}

/** Files the config names under the secret mount. */
function secretPathsInConfig(): string[] {
  return [...configText.matchAll(new RegExp(`${mountOf('secrets')}/([\\w.-]+)`, 'g'))].map((m) => m[1]!);
}

const scratch = mkdtempSync(join(tmpdir(), 'vncgate-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
/** The shipped config with real-shaped secrets (the templates' placeholders replaced). */
// A real certificate and key: loadConfig checks them as a pair.
const devPair = ensureDevCertificate(join(scratch, 'dev-cert'));
const realContent: Record<string, string> = {
  'jwt.secret': randomBytes(32).toString('base64'),
  'tls.crt': readFileSync(devPair.certFile, 'utf8'),
  'tls.key': readFileSync(devPair.keyFile, 'utf8'),
};
const realFiles = new Map([...projectedSecretFiles()].map(([p]) => [p, realContent[p] ?? `test ${p}`]));
const config = loadShippedConfig(realFiles, scratch);

describe('deploy/kubernetes: the objects', () => {
  it('kustomization.yaml lists every manifest in the directory, once', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(kustomization.images.map((i) => i.name)).toContain(container.image);
  });

  it('every object is valid against the Kubernetes schemas, with no unknown field', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Secret', 'Secret', 'Service', 'ServiceAccount'],
    );
    for (const o of objects) expect(() => validateObject(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
    for (const o of objects) expect(o.metadata.namespace, 'kustomize sets the namespace').toBeUndefined();
    expect(objects.some((o) => o.kind === 'Namespace' && o.metadata.name === kustomization.namespace)).toBe(true);
  });

  it('the validation catches a wrong type and a misspelt field', () => {
    const bad = structuredClone(deployment) as unknown as KubeObject & { spec: { replicas: unknown; template: { spec: { containers: Record<string, unknown>[] } } } };
    bad.spec.replicas = 'two';
    expect(() => validateObject(bad)).toThrow(/replicas/);
    const typo = structuredClone(deployment) as unknown as KubeObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    typo.spec.template.spec.containers[0]!.readinesProbe = {};
    expect(() => validateObject(typo)).toThrow(/readinesProbe/);
  });

  it('runs with the restricted Pod Security Standard, as the image user, without an API token', () => {
    const sc = container.securityContext!;
    expect(sc).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } });
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    expect(sc.capabilities?.add).toBeUndefined();
    const imageUser = /^USER\s+(\d+):(\d+)$/m.exec(readFileSync(new URL('docker/Dockerfile', root), 'utf8'))!;
    expect([sc.runAsUser, sc.runAsGroup]).toEqual([Number(imageUser[1]), Number(imageUser[2])]);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: Number(imageUser[2]) });
    expect(one<Record<string, unknown>>('ServiceAccount', pod.spec.serviceAccountName).automountServiceAccountToken).toBe(false);
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(one<{ metadata: { labels: Record<string, string> } }>('Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('keeps replicas on separate nodes and at most one of them disrupted', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const selector = deployment.spec.selector.matchLabels;
    expect(pod.metadata.labels).toMatchObject(selector);
    const spread = (pod.spec as unknown as { topologySpreadConstraints: { topologyKey: string; whenUnsatisfiable: string; labelSelector: { matchLabels: unknown } }[] }).topologySpreadConstraints;
    expect(spread.find((t) => t.topologyKey === 'kubernetes.io/hostname')).toMatchObject({ whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: selector } });
    const pdb = one<{ spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: unknown } } }>('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(selector);
    const unavailable = pdb.spec.maxUnavailable ?? deployment.spec.replicas - pdb.spec.minAvailable!;
    expect(unavailable).toBeGreaterThanOrEqual(1);
    expect(unavailable).toBeLessThan(deployment.spec.replicas);
  });
});

describe('deploy/kubernetes: agreement with vncgate', () => {
  it('the ConfigMap is the file VNCGATE_CONFIG names, and it loads with the Secrets mounted', () => {
    const env = Object.fromEntries(container.env!.map((e) => [e.name, e.value]));
    expect(env.VNCGATE_CONFIG).toBe(`${mountOf('config')}/vncgate.yaml`);
    expect(pod.spec.volumes.find((v) => v.name === 'config')?.configMap?.name).toBe(configMap.metadata.name);
    expect(Object.keys(configMap.data)).toEqual(['vncgate.yaml']);
    // Every secret file the config names is one the projected volume provides.
    expect(secretPathsInConfig().sort()).toEqual([...projectedSecretFiles().keys()].sort());
    expect(config.tls).not.toBeNull();
    expect(config.raw.redis.url).toMatch(/^rediss?:\/\//);
    expect(config.jwt?.hs256Secret).toBeTruthy();
    expect(config.ironic?.auth.type).toBe('keystone');
  });

  it("the Secret templates' placeholders cannot go live: vncgate refuses them", () => {
    const files = projectedSecretFiles();
    let error: unknown;
    try {
      loadShippedConfig(files, scratch);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(VncgateError);
    expect((error as VncgateError).code).toBe('CONFIG_ERR_INVALID');
    expect((error as VncgateError).details?.problems).toContain('api.jwt.hs256SecretFile: the secret must be at least 32 bytes');
    expect(() => new X509Certificate(files.get('tls.crt')!)).toThrow();
    expect(() => createPrivateKey(files.get('tls.key')!)).toThrow();
  });

  it('listen, containerPort, Service targetPort and publicUrl name one port', () => {
    expect(config.listen).toHaveLength(1);
    const { host, port } = config.listen[0]!;
    expect(host).toBe('0.0.0.0');
    expect(containerPort('https')).toBe(port);
    const service = one<{ spec: { sessionAffinity: string; ports: { port: number; targetPort: string }[] } }>('Service');
    expect(service.spec.ports).toHaveLength(1);
    expect(service.spec.ports[0]!.targetPort).toBe('https');
    expect(Number(new URL(config.raw.publicUrl!).port)).toBe(service.spec.ports[0]!.port);
    expect(service.spec.sessionAffinity).toBe('None');
  });

  it('the grace period outlasts the preStop sleep plus the drain', () => {
    const command = container.lifecycle!.preStop!.exec!.command!;
    expect(command.slice(0, 1)).toEqual(['sleep']);
    const preStopSeconds = Number(command[1]);
    expect(preStopSeconds).toBeGreaterThanOrEqual(5);
    // The drain's deadline counts from the end of the readiness grace.
    const drainSeconds = (config.raw.shutdown.readinessGraceMs + config.raw.shutdown.drainTimeoutMs) / 1000;
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopSeconds + drainSeconds + 5);
    // preStop already keeps new connections away until the Service has dropped the pod: a readiness
    // grace on top would only make every pod take longer to stop.
    expect(config.raw.shutdown.readinessGraceMs).toBe(0);
  });

  it('the metrics port is the annotated, named and policy-opened one', () => {
    // Metrics are off by default; the ConfigMap turns them on, on the port the pod declares.
    expect(CONFIG_SCHEMA.properties.metrics.properties.listen.default).toBeNull();
    expect(config.metricsListen).not.toBeNull();
    const expected = config.metricsListen!.port;
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(expected), 'prometheus.io/path': '/metrics' });
    expect(containerPort('metrics')).toBe(expected);
    const policy = one<NetworkPolicyShape>('NetworkPolicy');
    const rule = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === expected))!;
    expect(rule.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  });

  it('the NetworkPolicy admits browsers on the listen port and lets out every address the config names', () => {
    const policy = one<NetworkPolicyShape>('NetworkPolicy');
    expect(policy.spec.podSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    const browsers = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === config.listen[0]!.port))!;
    expect(browsers.from).toBeUndefined();
    const allows = (first: string, last: string, lo: number, hi: number): boolean =>
      policy.spec.egress.some(
        (r) =>
          r.to.some((t) => t.ipBlock && inBlock(t.ipBlock.cidr, first) && inBlock(t.ipBlock.cidr, last)) &&
          r.ports.some((p) => p.protocol === 'TCP' && p.port <= lo && (p.endPort ?? p.port) >= hi),
      );
    for (const url of [config.raw.redis.url!, config.raw.keystone.authUrl!, config.raw.ironic.url!]) {
      const u = new URL(url);
      const port = Number(u.port);
      expect(port, url).toBeGreaterThan(0);
      expect(allows(u.hostname, u.hostname, port, port), url).toBe(true);
    }
    for (const entry of config.raw.backends.allowedTargets) {
      const m = /^([\d.]+)\/(\d+):(\d+)-(\d+)$/.exec(entry)!;
      const [first, last] = ipv4Range(m[1]!, Number(m[2]));
      expect(allows(first, last, Number(m[3]), Number(m[4])), entry).toBe(true);
    }
    expect(policy.spec.egress.some((r) => r.ports.some((p) => p.port === 53 && p.protocol === 'UDP'))).toBe(true);
  });
});

type NetworkPolicyShape = {
  spec: {
    podSelector: { matchLabels: unknown };
    ingress: { from?: unknown[]; ports: { port: number }[] }[];
    egress: { to: { ipBlock?: { cidr: string } }[]; ports: { port: number; endPort?: number; protocol: string }[] }[];
  };
};

function inBlock(cidr: string, ip: string): boolean {
  const [net, bits] = cidr.split('/');
  const list = new BlockList();
  list.addSubnet(net!, Number(bits), 'ipv4');
  return list.check(ip, 'ipv4');
}

/** First and last IPv4 address of a CIDR. */
function ipv4Range(net: string, bits: number): [string, string] {
  const n = net.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - bits);
  const first = n - (n % size);
  const fmt = (v: number): string => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
  return [fmt(first), fmt(first + size - 1)];
}

describe('deploy/kubernetes: the probes ask routes vncgate serves', () => {
  let srv: VncgateServer;
  let storeUp = true;
  beforeAll(async () => {
    // The ConfigMap's readiness setting, over a token store the test can take down (the Redis every pod shares).
    const cfg = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, log: { level: 'silent' }, health: config.raw.health } });
    const tokens = new MemoryTokenStore();
    tokens.ready = async () => {
      if (!storeUp) throw new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', 'redis down');
    };
    srv = await buildServer({ config: cfg, tokens, log: createLogger({ level: 'silent' }) });
  });
  afterAll(async () => srv.close());

  it('a Redis outage, the same for every pod, does not take them all out of the Service: readiness stays 200 and says the store is down', async () => {
    expect(config.raw.health.readinessChecksTokenStore).toBe(false);
    storeUp = false;
    try {
      const res = await fetch(`http://${srv.addresses[0]}${container.readinessProbe!.httpGet!.path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ tokenStoreReady: false });
    } finally {
      storeUp = true;
    }
  });

  it('startup and liveness ask /healthz, readiness /readyz, over HTTPS on the listen port, and each answers 200', async () => {
    const probes = { startup: container.startupProbe!, liveness: container.livenessProbe!, readiness: container.readinessProbe! };
    expect(probes.startup.httpGet?.path).toBe('/healthz');
    expect(probes.liveness.httpGet?.path).toBe('/healthz');
    expect(probes.readiness.httpGet?.path).toBe('/readyz');
    for (const [name, probe] of Object.entries(probes)) {
      // HTTPS because the shipped config terminates TLS itself (tls.plainHttp is off).
      expect(probe.httpGet?.scheme, name).toBe(config.tls ? 'HTTPS' : 'HTTP');
      expect(probe.httpGet?.port, name).toBe('https');
      const res = await fetch(`http://${srv.addresses[0]}${probe.httpGet!.path}`);
      expect(res.status, name).toBe(200);
    }
  });
});
