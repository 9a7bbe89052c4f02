/**
 * A reader for oslo.config INI files (nova.conf, ironic.conf): `[section]` headers, `key = value`
 * (or `key: value`), `#`/`;` comment lines, and continuation lines indented under a value. Keys
 * repeat: the last one wins, as in oslo.config for single-valued options.
 */
export type Ini = Map<string, Map<string, string>>;

export function parseIni(text: string): Ini {
  const out: Ini = new Map();
  let section: Map<string, string> | null = null;
  let lastKey: string | null = null;
  for (const rawLine of text.split(/\r?\n/)) {
    if (/^\s*([#;]|$)/.test(rawLine)) {
      lastKey = null;
      continue;
    }
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(rawLine);
    if (header) {
      const name = header[1]!.trim();
      section = out.get(name) ?? new Map<string, string>();
      out.set(name, section);
      lastKey = null;
      continue;
    }
    if (/^\s/.test(rawLine) && section && lastKey !== null) {
      section.set(lastKey, `${section.get(lastKey) ?? ''}\n${rawLine.trim()}`.trim());
      continue;
    }
    const kv = /^\s*([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/.exec(rawLine);
    if (!kv || !section) continue;
    lastKey = kv[1]!;
    section.set(lastKey, kv[2]!.trim());
  }
  return out;
}

export function iniGet(ini: Ini, section: string, key: string): string | undefined {
  const v = ini.get(section)?.get(key);
  return v === undefined || v === '' ? undefined : v;
}

/** oslo.config list values: comma-separated (newlines too, for multi-line values). */
export function iniList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function iniBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (/^(true|yes|on|1)$/i.test(value)) return true;
  if (/^(false|no|off|0)$/i.test(value)) return false;
  return undefined;
}
