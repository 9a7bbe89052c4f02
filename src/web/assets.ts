import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { VncgateError } from '../errors.js';

/** One file of the built console page, held in memory with its gzip form. */
export interface WebAsset {
  readonly body: Buffer;
  /** Present for text files where it is worth it. */
  readonly gzip: Buffer | undefined;
  readonly contentType: string;
}

export interface WebAssets {
  /** dist/public/vnc.html */
  readonly page: WebAsset;
  /** dist/public/index.html: what `/` shows a person who types the server's address. */
  readonly landing: WebAsset;
  /** dist/public/playback.html (recordings), if the build has it. */
  readonly playback: WebAsset | undefined;
  /** dist/public/assets/*, by file name (content-hashed, so immutable). */
  readonly assets: ReadonlyMap<string, WebAsset>;
}

export const PAGE_FILE = 'vnc.html';
export const LANDING_FILE = 'index.html';
export const PLAYBACK_FILE = 'playback.html';
export const ASSETS_DIR = 'assets';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg']);
const MIN_GZIP_BYTES = 1024;

function load(file: string): WebAsset {
  const ext = path.extname(file).toLowerCase();
  const body = readFileSync(file);
  const gzip = COMPRESSIBLE.has(ext) && body.length >= MIN_GZIP_BYTES ? gzipSync(body, { level: 9 }) : undefined;
  return { body, gzip, contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream' };
}

function notBuilt(webRoot: string, what: string): VncgateError {
  return new VncgateError(
    'CONFIG_ERR_FILE',
    `console page is not built: ${what} in ${webRoot}. Run "npm run build:web" (node scripts/build-web.mjs) ` +
      'before starting vncgate, or point the web root at a directory that holds a build.',
    { details: { webRoot } },
  );
}

/**
 * Reads the whole built page at start-up (a handful of files, ~200 KiB), so a missing or partial
 * build stops vncgate with a clear message instead of producing 404s for users later.
 */
export function loadWebAssets(webRoot: string): WebAssets {
  const [page, landing] = [PAGE_FILE, LANDING_FILE].map((name) => {
    const file = path.join(webRoot, name);
    if (!existsSync(file)) throw notBuilt(webRoot, `${name} is missing`);
    return load(file);
  }) as [WebAsset, WebAsset];

  const playbackFile = path.join(webRoot, PLAYBACK_FILE);
  const playback = existsSync(playbackFile) ? load(playbackFile) : undefined;
  const assetsDir = path.join(webRoot, ASSETS_DIR);
  const assets = new Map<string, WebAsset>();
  if (existsSync(assetsDir)) {
    for (const name of readdirSync(assetsDir)) {
      const file = path.join(assetsDir, name);
      if (statSync(file).isFile()) assets.set(name, load(file));
    }
  }

  // Every asset a page links must be there, or the page would load half-styled or dead.
  const pages: [string, WebAsset][] = [[PAGE_FILE, page], [LANDING_FILE, landing], ...(playback ? [[PLAYBACK_FILE, playback] as [string, WebAsset]] : [])];
  for (const [name, asset] of pages) {
    const missing = [...asset.body.toString('utf8').matchAll(/(?:src|href)="assets\/([^"]+)"/g)]
      .map((m) => m[1] ?? '')
      .filter((linked) => !assets.has(linked));
    if (missing.length > 0) throw notBuilt(webRoot, `${name} links missing assets (${missing.join(', ')})`);
  }

  return { page, landing, playback, assets };
}
