/** The ways every golden vector is fed: whole, byte at a time, and split in two at every offset. */
export function* chunkings(bytes: Buffer): Generator<{ name: string; chunks: Buffer[] }> {
  yield { name: 'whole', chunks: [bytes] };
  yield { name: 'byte-at-a-time', chunks: [...bytes].map((b) => Buffer.from([b])) };
  for (let i = 1; i < bytes.length; i++) {
    yield { name: `split@${i}`, chunks: [bytes.subarray(0, i), bytes.subarray(i)] };
  }
}

/** Annotated hex: whitespace and `# comments` are ignored; "quoted" text is taken as Latin-1. */
export function hex(strings: TemplateStringsArray, ...values: unknown[]): Buffer {
  const src = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const parts: Buffer[] = [];
  for (const line of src.split('\n')) {
    const code = line.replace(/#.*$/, '');
    const re = /"([^"]*)"|([0-9a-fA-F]+)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(code)) !== null) {
      if (m[1] !== undefined) parts.push(Buffer.from(m[1].replace(/\\n/g, '\n'), 'latin1'));
      else if (m[2] !== undefined) {
        if (m[2].length % 2 !== 0) throw new Error(`odd hex run ${m[2]}`);
        parts.push(Buffer.from(m[2], 'hex'));
      }
    }
  }
  return Buffer.concat(parts);
}
