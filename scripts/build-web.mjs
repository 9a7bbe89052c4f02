#!/usr/bin/env node
/**
 * Builds the console page (web/) into dist/public/ for src/web/console-page.ts to serve:
 *
 *   dist/public/vnc.html                        page, asset names and SRI digests filled in
 *   dist/public/index.html                      landing page for `/` (no script), likewise
 *   dist/public/playback.html                   recording playback page, likewise
 *   dist/public/assets/console-<hash>.js        web/src/main.ts + noVNC core, one ES module
 *   dist/public/assets/playback-<hash>.js       web/src/playback.ts + noVNC core
 *   dist/public/assets/console-<hash>.css
 *   dist/public/assets/favicon-<hash>.svg
 *
 * Content-hashed names let the server cache assets for a year; everything is local (no CDN) and
 * nothing is inline, so the page runs under `script-src 'self'; style-src 'self'`.
 *
 * Not dist/src/web/: `tsc -p tsconfig.build.json` compiles src/web/*.ts there.
 *
 * Usage: node scripts/build-web.mjs [--outdir DIR]
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const webDir = path.join(root, 'web');

const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outDir = path.resolve(values.outdir ?? path.join(root, 'dist', 'public'));
const assetsDir = path.join(outDir, 'assets');

// noVNC is MPL-2.0 and ships pako (MIT); its per-file headers are plain comments that minifying
// drops, so the notice goes on top of the bundle.
const BANNER = `/*! vncgate console page. Includes noVNC ${await novncVersion()} (MPL-2.0, https://github.com/novnc/noVNC) and pako (MIT, https://github.com/nodeca/pako). */`;

async function novncVersion() {
  const pkg = JSON.parse(await readFile(path.join(root, 'node_modules/@novnc/novnc/package.json'), 'utf8'));
  return pkg.version;
}

/** The console page, and the landing page served at `/` (src/web/console-page.ts). */
const HTML_PAGES = ['vnc.html', 'index.html', 'playback.html'];

function hashName(name, ext, bytes) {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  return `${name}-${hash}.${ext}`;
}

function sri(bytes) {
  return `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
}

async function bundle() {
  const result = await esbuild.build({
    entryPoints: { console: path.join(webDir, 'src/main.ts'), playback: path.join(webDir, 'src/playback.ts'), 'console-css': path.join(webDir, 'console.css') },
    bundle: true,
    format: 'esm',
    // noVNC 1.7 uses top-level await (core/util/browser.js), so ES2022 is the floor anyway.
    target: ['es2022'],
    platform: 'browser',
    minify: true,
    legalComments: 'inline',
    banner: { js: BANNER },
    tsconfig: path.join(webDir, 'tsconfig.json'),
    write: false,
    outdir: outDir,
    logLevel: 'warning',
  });
  const pick = (name) => {
    const file = result.outputFiles.find((f) => path.basename(f.path) === name);
    if (file === undefined) throw new Error(`esbuild produced no ${name}`);
    return file.contents;
  };
  return { js: pick('console.js'), playbackJs: pick('playback.js'), css: pick('console-css.css') };
}

/** Empties the output directory, but only if it is missing, empty or an earlier build of this page. */
async function clearOutDir() {
  const entries = await readdir(outDir).catch((error) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  if (entries.length > 0 && !entries.includes('vnc.html')) {
    throw new Error(`refusing to replace ${outDir}: it is not an earlier console page build`);
  }
  await rm(outDir, { recursive: true, force: true });
}

async function main() {
  const { js, playbackJs, css } = await bundle();
  const favicon = await readFile(path.join(webDir, 'favicon.svg'));
  const assets = [
    { placeholder: 'CONSOLE_JS', file: hashName('console', 'js', js), bytes: js },
    { placeholder: 'PLAYBACK_JS', file: hashName('playback', 'js', playbackJs), bytes: playbackJs },
    { placeholder: 'CONSOLE_CSS', file: hashName('console', 'css', css), bytes: css },
    { placeholder: 'FAVICON', file: hashName('favicon', 'svg', favicon), bytes: favicon },
  ];

  const pages = {};
  for (const name of HTML_PAGES) {
    let html = await readFile(path.join(webDir, name), 'utf8');
    for (const asset of assets) {
      // Relative URLs, so the page also works under a reverse-proxy prefix such as /novnc/.
      html = html.replaceAll(`%${asset.placeholder}_HREF%`, `assets/${asset.file}`);
      html = html.replaceAll(`%${asset.placeholder}_SRI%`, sri(asset.bytes));
    }
    html = html.replace(/<!--[\s\S]*?-->\n?/g, '');
    const leftover = html.match(/%[A-Z_]+%/);
    if (leftover !== null) throw new Error(`web/${name}: unknown placeholder ${leftover[0]}`);
    pages[name] = html;
  }

  await clearOutDir();
  await mkdir(assetsDir, { recursive: true });
  await Promise.all(assets.map((a) => writeFile(path.join(assetsDir, a.file), a.bytes)));
  await Promise.all(HTML_PAGES.map((name) => writeFile(path.join(outDir, name), pages[name])));

  const sizes = assets.map((a) => `${a.file} ${(a.bytes.length / 1024).toFixed(1)} KiB`).join(', ');
  console.log(`console page built in ${path.relative(process.cwd(), outDir) || '.'}: ${HTML_PAGES.join(', ')}, ${sizes}`);
}

await main();
