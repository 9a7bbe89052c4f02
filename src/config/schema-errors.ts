import type { ErrorObject } from 'ajv';
import { CONFIG_SCHEMA } from './schema.js';

type SchemaNode = { properties?: Record<string, SchemaNode>; additionalProperties?: SchemaNode | boolean; items?: SchemaNode; default?: unknown };

/** The schema node for an instance path like `/backends/profiles/bmc/security`. */
function nodeAt(segments: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = CONFIG_SCHEMA as unknown as SchemaNode;
  for (const seg of segments) {
    if (!node) return undefined;
    if (node.properties && Object.hasOwn(node.properties, seg)) node = node.properties[seg];
    else if (node.items && /^\d+$/.test(seg)) node = node.items;
    else if (typeof node.additionalProperties === 'object') node = node.additionalProperties;
    else return undefined;
  }
  return node;
}

function segmentsOf(instancePath: string): string[] {
  return instancePath === '' ? [] : instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Levenshtein distance, for "did you mean" (option names are short). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The known option closest to an unknown one, if it is close enough to be a typo. */
export function suggestOption(unknown: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(unknown, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = Math.max(2, Math.floor(unknown.length / 3));
  return best !== null && bestDistance <= allowed ? best : null;
}

/** One line per schema problem: where, what, and for an unknown key the option it probably meant. */
export function describeSchemaError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const key = String((e.params as { additionalProperty?: string }).additionalProperty);
    const known = Object.keys(nodeAt(segmentsOf(e.instancePath))?.properties ?? {});
    const guess = suggestOption(key, known);
    return `${where}: unknown option ${JSON.stringify(key)}${guess !== null ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`;
  }
  const allowed = e.keyword === 'enum' ? ` (one of ${(e.params as { allowedValues?: unknown[] }).allowedValues?.join(', ')})` : '';
  return `${where}: ${e.message ?? 'invalid'}${allowed}`;
}

/**
 * A copy of `doc` the later checks can run on despite schema problems: unknown keys removed, and
 * each refused value replaced by its default (or removed when it has none), so that one run
 * reports schema problems and the problems found after them (unreadable files, names that refer
 * to nothing) together.
 */
export function repairedForChecks(doc: Record<string, unknown>, errors: readonly ErrorObject[]): Record<string, unknown> {
  const copy = structuredClone(doc);
  for (const e of errors) {
    const segs = segmentsOf(e.instancePath);
    if (e.keyword === 'additionalProperties') segs.push(String((e.params as { additionalProperty?: string }).additionalProperty));
    else if (e.keyword === 'required') continue;
    const last = segs.pop();
    if (last === undefined) continue;
    let parent: unknown = copy;
    for (const s of segs) parent = parent !== null && typeof parent === 'object' ? (parent as Record<string, unknown>)[s] : undefined;
    if (parent === null || typeof parent !== 'object') continue;
    const fallback = e.keyword === 'additionalProperties' ? undefined : nodeAt([...segs, last])?.default;
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else if (fallback !== undefined) (parent as Record<string, unknown>)[last] = structuredClone(fallback);
    else delete (parent as Record<string, unknown>)[last];
  }
  return copy;
}
