import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, ENV_OVERRIDES } from '../src/config/index.js';
import { ERROR_CODES } from '../src/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Leaf option paths of the schema, e.g. "session.idleTimeoutMs". */
function leaves(schema: { properties?: Record<string, unknown> }, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(schema.properties ?? {})) {
    const s = v as { type?: unknown; properties?: Record<string, unknown>; additionalProperties?: unknown };
    const path = prefix ? `${prefix}.${k}` : k;
    if (s.properties && k !== 'profiles') out.push(...leaves(s as { properties: Record<string, unknown> }, path));
    else out.push(path);
  }
  return out;
}

describe('README stays in step with the code', () => {
  it('documents every error code', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(readme, code).toContain(`\`${code}\``);
  });

  it('documents every configuration option and environment variable', () => {
    for (const path of leaves(CONFIG_SCHEMA as never)) {
      const name = path === 'backends.profiles' ? 'backends.profiles.NAME' : path;
      expect(readme, name).toContain(`\`${name}\``);
    }
    for (const env of Object.keys(ENV_OVERRIDES)) expect(readme, env).toContain(env);
  });
});
