import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { VncgateError } from '../errors.js';
import { resolveConfig } from './resolve.js';
import { CONFIG_SCHEMA, ENV_OVERRIDES, type RawConfig } from './schema.js';
import { describeSchemaError, repairedForChecks } from './schema-errors.js';
import type { Config, LoadOptions } from './types.js';

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(CONFIG_SCHEMA as unknown as object);

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(source)) {
    const t = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && t && typeof t === 'object' && !Array.isArray(t)) {
      deepMerge(t as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      target[k] = v;
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** The log level for commands that load no configuration (probe, token): VNCGATE_LOG_LEVEL or warn. */
export function cliLogLevel(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const v = env.VNCGATE_LOG_LEVEL;
  return v !== undefined && /^(trace|debug|info|warn|error|fatal|silent)$/.test(v) ? v : 'warn';
}


/**
 * Loads the configuration: file (YAML), then environment overrides, then explicit overrides;
 * validates everything and reports every problem at once (CONFIG_ERR_INVALID, details.problems).
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const { config, problems, source } = loadConfigWithProblems(opts);
  if (problems.length > 0 || config === null) throw configError(source, problems);
  return config;
}

/**
 * The configuration and every problem found in it, without throwing for those: for commands that
 * report configuration problems together with their own (`vncgate token create`). `config` is
 * null only when the problems leave nothing to resolve; with problems, it is a best effort
 * (refused values replaced by their defaults) to check more against, never to serve with.
 * An unreadable or non-YAML file still throws (CONFIG_ERR_FILE).
 */
export function loadConfigWithProblems(opts: LoadOptions = {}): { config: Config | null; problems: string[]; source: string | null } {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.VNCGATE_CONFIG ?? null;
  const problems: string[] = [];

  let doc: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new VncgateError('CONFIG_ERR_FILE', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed: unknown = parseYaml(text);
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
        doc = parsed as Record<string, unknown>;
      }
    } catch (err) {
      throw new VncgateError('CONFIG_ERR_FILE', `config file ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
  }
  // A single listen string in the file is accepted for convenience.
  if (typeof doc.listen === 'string') doc.listen = [doc.listen];
  if (typeof doc.listenProxyProtocol === 'string') doc.listenProxyProtocol = [doc.listenProxyProtocol];

  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (spec.parse === 'list') setPath(doc, spec.path, value.split(',').map((s) => s.trim()).filter(Boolean));
    else if (spec.parse === 'boolean') {
      if (!/^(1|0|true|false|yes|no)$/i.test(value)) problems.push(`${name}: expected true or false, got ${JSON.stringify(value)}`);
      else setPath(doc, spec.path, /^(1|true|yes)$/i.test(value));
    } else if (spec.parse === 'integer') {
      if (!/^\d{1,15}$/.test(value)) problems.push(`${name}: expected a whole number, got ${JSON.stringify(value)}`);
      else setPath(doc, spec.path, Number(value));
    } else setPath(doc, spec.path, value);
  }
  if (opts.overrides) deepMerge(doc, structuredClone(opts.overrides));

  // One pass: schema problems and every later check are reported together. Where the schema
  // refused a value, the later checks see its default instead (or nothing, for an unknown key).
  if (!validate(doc)) {
    const errors = validate.errors ?? [];
    problems.push(...errors.map(describeSchemaError));
    doc = repairedForChecks(doc, errors);
    if (!validate(doc)) return { config: null, problems, source: file };
  }
  const config = resolveConfig(doc as unknown as RawConfig, file, opts.purpose ?? 'serve', problems);
  return { config: deepFreeze(config), problems, source: file };
}

function configError(file: string | null, problems: string[]): VncgateError {
  const where = file ? ` (${file})` : '';
  return new VncgateError('CONFIG_ERR_INVALID', `invalid configuration${where}:\n  - ${problems.join('\n  - ')}`, { details: { problems } });
}
