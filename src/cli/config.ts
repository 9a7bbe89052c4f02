import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { importIronicConf, importNovaConf } from '../config/import.js';
import { parseIni } from '../config/ini.js';
import { loadConfig } from '../config/index.js';
import { UsageError, type CliIo } from './io.js';

export const CONFIG_USAGE = `Usage: vncgate config import (--nova-conf FILE | --ironic-conf FILE)
       vncgate config check [--config FILE]

import  reads the [vnc], [console], [DEFAULT]/[ssl], [database], [api], [cors] and
        [keystone_authtoken] options of an existing nova.conf or ironic.conf and prints the
        equivalent vncgate configuration (YAML) on stdout; every option with no equivalent,
        and every secret to move into a file, is a warning on stderr.
check   validates a configuration (file and VNCGATE_* environment) and prints {"ok": true} or
        every problem at once.
`;

export async function configCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: { 'nova-conf': { type: 'string' }, 'ironic-conf': { type: 'string' }, config: { type: 'string' } },
  });
  if (sub === 'check') {
    const cfg = loadConfig(values.config !== undefined ? { file: values.config } : {});
    io.out({ ok: true, source: cfg.source, listen: cfg.listen, tls: cfg.tls !== null, ironic: cfg.ironic !== null, nova: cfg.nova !== null });
    return 0;
  }
  if (sub !== 'import') throw new UsageError('expected "config import" or "config check"');
  const nova = values['nova-conf'];
  const ironic = values['ironic-conf'];
  if ((nova === undefined) === (ironic === undefined)) throw new UsageError('give exactly one of --nova-conf and --ironic-conf');
  const file = (nova ?? ironic)!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const { config, warnings } = nova !== undefined ? importNovaConf(parseIni(text)) : importIronicConf(parseIni(text));
  process.stdout.write(`# vncgate configuration imported from ${file}\n${stringify(config)}`);
  for (const w of warnings) io.err(`warning: ${w}`);
  return 0;
}
