import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { checkTlsPair, type CertificateSummary, type Config } from '../config/index.js';
import { VncgateError } from '../errors.js';

export type TlsFiles = NonNullable<Config['tls']>;
export type ReloadTrigger = 'SIGHUP' | 'file change';
export type ReloadResult = { ok: true; changed: boolean; certificate: CertificateSummary } | { ok: false; error: VncgateError };

/** Quiet time after the last change in a watched directory before the files are read. */
export const WATCH_DEBOUNCE_MS = 500;
/**
 * A file change that brings a key of another certificate is looked at again this much later before
 * it is reported as an error: renewal tools that rename the two files one at a time leave a
 * mismatched pair on disk between the renames, which may be more than the debounce apart.
 */
export const MISMATCH_RETRY_MS = 2_000;
/** A directory that never stops changing still has its files read at least this often. */
const WATCH_MAX_DELAY_MS = 5_000;
/** Warn when the served certificate has fewer days left than this. */
export const EXPIRY_WARNING_DAYS = 14;
/** How often the served certificate's expiry is looked at again in a long-running process. */
const EXPIRY_CHECK_INTERVAL_MS = 12 * 3_600_000;
const DAY_MS = 86_400_000;

/**
 * Serves a renewed certificate without a restart. `reload()` (SIGHUP, or a change in the files'
 * directories) reads both files again, checks them as a pair with the listener's own settings
 * (checkTlsPair) and only then swaps the server's secure context; a bad pair is refused with
 * CONFIG_ERR_TLS_RELOAD and the previous one stays. The swap affects new handshakes only:
 * established connections keep the TLS session they negotiated. It also starts with fresh session
 * ticket keys, so a ticket issued before the swap cannot resume a session under the old
 * certificate.
 *
 * The directories are watched, not the files, because renewal tools replace files by rename
 * (certbot's `live/` symlinks, cert-manager's and the kubelet's `..data` symlink swap), which a
 * watch on the old file's inode never reports. Any event in the directory is enough: the files are
 * read after WATCH_DEBOUNCE_MS of quiet and compared by digest, so unrelated files there cost a
 * read and nothing else, and a pair caught half-written is looked at again on the next write.
 */
export class TlsReloader {
  readonly #server: TlsServer;
  readonly #files: TlsFiles;
  readonly #log: Logger;
  #certificate: CertificateSummary;
  /** Digests of the pair being served and of the last pair looked at (served or refused). */
  #served: string;
  #seen: string;
  #lastRefusal: VncgateError | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | null = null;
  #pendingSince = 0;
  #expiryTimer: NodeJS.Timeout | null = null;
  #mismatchRetry: NodeJS.Timeout | null = null;
  readonly #mismatchRetryMs: number;
  #closed = false;

  constructor(server: TlsServer, files: TlsFiles, log: Logger, opts: { mismatchRetryMs?: number } = {}) {
    const check = checkTlsPair(files.cert, files.key, files);
    // loadConfig refuses a bad pair, so this is our own misuse.
    if (!check.ok) throw new VncgateError('INTERNAL_ERR', `TlsReloader got an unchecked pair: ${check.problem}`);
    this.#server = server;
    this.#files = files;
    this.#log = log;
    this.#certificate = check.certificate;
    this.#served = this.#seen = digest(files.cert, files.key);
    this.#mismatchRetryMs = opts.mismatchRetryMs ?? MISMATCH_RETRY_MS;
  }

  /** The certificate new handshakes get. */
  get certificate(): CertificateSummary {
    return this.#certificate;
  }

  /** Logs the served certificate, warns if it expires soon, and watches the files if configured. */
  start(): void {
    const c = this.#certificate;
    this.#log.info({ subject: c.subject, issuer: c.issuer, fingerprint256: c.fingerprint256, notAfter: c.notAfter, watchFiles: this.#files.watchFiles }, 'TLS certificate');
    this.#checkExpiry();
    this.#expiryTimer = setInterval(() => this.#checkExpiry(), EXPIRY_CHECK_INTERVAL_MS).unref();
    if (this.#files.watchFiles) this.#watch();
  }

  /** Reads the files again and serves them to new handshakes if they form a valid pair. Reloads run one at a time. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    return this.#enqueue(trigger, null);
  }

  /** `retryOf`: the digest of a mismatched pair a file change saw, looked at again (see #mismatched). */
  #enqueue(trigger: ReloadTrigger, retryOf: string | null): Promise<ReloadResult> {
    const next = this.#queue.then(() => this.#reload(trigger, retryOf));
    this.#queue = next;
    return next;
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#debounce) clearTimeout(this.#debounce);
    if (this.#mismatchRetry) clearTimeout(this.#mismatchRetry);
    if (this.#expiryTimer) clearInterval(this.#expiryTimer);
  }

  async #reload(trigger: ReloadTrigger, retryOf: string | null): Promise<ReloadResult> {
    const { certFile, keyFile } = this.#files;
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = await readFile(certFile);
    } catch (err) {
      return this.#refuse(trigger, 'certFile', certFile, `cannot read it (${errCode(err)})`, `unreadable cert ${errCode(err)}`);
    }
    try {
      key = await readFile(keyFile);
    } catch (err) {
      return this.#refuse(trigger, 'keyFile', keyFile, `cannot read it (${errCode(err)})`, `unreadable key ${errCode(err)}`);
    }
    const d = digest(cert, key);
    if (trigger === 'file change' && d === this.#seen && d !== retryOf) {
      // Nothing new to look at (an unrelated file changed, or the same bad pair again): no log line.
      return this.#lastRefusal && d !== this.#served ? { ok: false, error: this.#lastRefusal } : { ok: true, changed: false, certificate: this.#certificate };
    }
    const check = checkTlsPair(cert, key, this.#files);
    if (!check.ok) {
      const path = check.option === 'certFile' ? certFile : check.option === 'keyFile' ? keyFile : null;
      if (check.mismatch === true && trigger === 'file change' && retryOf === null) return this.#mismatched(path, check.problem, d);
      return this.#refuse(trigger, check.option, path, check.problem, d);
    }
    try {
      this.#server.setSecureContext(check.contextOptions);
    } catch (err) {
      return this.#refuse(trigger, 'certFile', certFile, `OpenSSL refuses the pair (${errCode(err)})`, d);
    }
    const changed = d !== this.#served;
    this.#served = this.#seen = d;
    this.#lastRefusal = null;
    this.#certificate = check.certificate;
    const c = check.certificate;
    this.#log.info(
      { trigger, changed, subject: c.subject, issuer: c.issuer, fingerprint256: c.fingerprint256, notAfter: c.notAfter },
      changed ? 'TLS certificate reloaded: new connections get it, open ones keep theirs' : 'TLS certificate reloaded (unchanged)',
    );
    this.#checkExpiry();
    return { ok: true, changed, certificate: c };
  }

  #refuse(trigger: ReloadTrigger, option: string, path: string | null, problem: string, seen: string): ReloadResult {
    this.#seen = seen;
    const error = new VncgateError('CONFIG_ERR_TLS_RELOAD', `tls.${option}${path !== null ? ` ${path}` : ''}: ${problem}`, {
      details: { option: `tls.${option}`, file: path, problem },
    });
    this.#lastRefusal = error;
    // An error, though the fault is the operator's: the old certificate will expire and nothing
    // else tells them that the new one was never served.
    this.#log.error(
      { code: error.code, trigger, option: `tls.${option}`, file: path, problem, serving: this.#certificate.fingerprint256, servingNotAfter: this.#certificate.notAfter },
      'TLS certificate reload refused: new connections still get the previous certificate',
    );
    return { ok: false, error };
  }

  /**
   * A file change brought a key of another certificate: most likely the two files are being
   * replaced one at a time. Said at warn, and looked at again once (a pair that still does not
   * match then is refused at error level like any other); a change in between is read as usual.
   */
  #mismatched(path: string | null, problem: string, seen: string): ReloadResult {
    this.#seen = seen;
    const error = new VncgateError('CONFIG_ERR_TLS_RELOAD', `tls.keyFile${path !== null ? ` ${path}` : ''}: ${problem}`, { details: { option: 'tls.keyFile', file: path, problem } });
    this.#lastRefusal = error;
    this.#log.warn(
      { code: error.code, trigger: 'file change', option: 'tls.keyFile', file: path, problem, retryInMs: this.#mismatchRetryMs, serving: this.#certificate.fingerprint256 },
      'TLS certificate and key do not match yet (replaced one at a time?): looking again shortly; new connections still get the previous certificate',
    );
    if (this.#mismatchRetry) clearTimeout(this.#mismatchRetry);
    this.#mismatchRetry = setTimeout(() => {
      this.#mismatchRetry = null;
      if (!this.#closed) void this.#enqueue('file change', seen);
    }, this.#mismatchRetryMs).unref();
    return { ok: false, error };
  }

  #watch(): void {
    const dirs = new Set([dirname(resolve(this.#files.certFile)), dirname(resolve(this.#files.keyFile))]);
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#changed());
        w.on('error', (err) => {
          this.#log.warn({ dir, err: errCode(err) }, 'stopped watching a TLS file directory; SIGHUP still reloads');
          w.close();
        });
        this.#watchers.push(w);
      } catch (err) {
        // inotify watches exhausted (ENOSPC), a directory we may not list, …
        this.#log.warn({ dir, err: errCode(err) }, 'cannot watch a TLS file directory; SIGHUP still reloads');
      }
    }
    this.#log.debug({ dirs: [...dirs] }, 'watching the TLS files');
  }

  #changed(): void {
    if (this.#closed) return;
    const now = performance.now();
    if (this.#debounce === null) this.#pendingSince = now;
    else if (now - this.#pendingSince >= WATCH_MAX_DELAY_MS) return;
    else clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      if (!this.#closed) void this.reload('file change');
    }, WATCH_DEBOUNCE_MS).unref();
  }

  #checkExpiry(): void {
    const c = this.#certificate;
    const daysLeft = Math.floor((Date.parse(c.notAfter) - Date.now()) / DAY_MS);
    if (daysLeft >= EXPIRY_WARNING_DAYS) return;
    this.#log.warn(
      { subject: c.subject, fingerprint256: c.fingerprint256, notAfter: c.notAfter, daysLeft },
      daysLeft < 0 ? 'the TLS certificate has expired' : `the TLS certificate expires in less than ${EXPIRY_WARNING_DAYS} days`,
    );
  }
}

/** Identifies the content of a pair without keeping or logging the key. */
function digest(cert: Buffer, key: Buffer): string {
  return `${createHash('sha256').update(cert).digest('hex')}:${createHash('sha256').update(key).digest('hex')}`;
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
