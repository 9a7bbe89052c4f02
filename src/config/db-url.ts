import { VncgateError } from '../errors.js';

/** A Nova cell database, as its [database] connection URL names it. */
export type CellDb = {
  kind: 'mysql' | 'postgres';
  host: string | null;
  port: number | null;
  user: string | null;
  password: string | null;
  database: string | null;
  /** MySQL `unix_socket=`, or PostgreSQL `host=/dir` (a socket directory). */
  socket: string | null;
  /** TLS: CA, client certificate and key file paths (pymysql `ssl_ca`… / libpq `sslrootcert`…). */
  tls: { ca: string | null; cert: string | null; key: string | null; required: boolean } | null;
};

const DB_URL = /^(mysql|mariadb|postgres|postgresql)(?:\+[a-z0-9]+)?:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]+\]|[^:/?]*)?(?::(\d+))?(?:\/([^?]*))?(?:\?(.*))?$/i;

/**
 * Parses the URLs Nova's [database] connection uses — `mysql+pymysql://user:pw@host:port/db?…`,
 * `…@/db?unix_socket=/run/mysqld/mysqld.sock`, `postgresql+psycopg2://…?host=/var/run/postgresql`
 * — keeping the socket and TLS options the Python drivers understand.
 */
export function parseCellDbUrl(url: string): CellDb {
  const m = DB_URL.exec(url);
  if (!m) throw new VncgateError('CONFIG_ERR_INVALID', 'not a mysql:// or postgres:// database URL');
  const kind = /^(mysql|mariadb)$/i.test(m[1]!) ? 'mysql' : 'postgres';
  const q = new URLSearchParams(m[7] ?? '');
  const dec = (v: string | undefined): string | null => (v === undefined || v === '' ? null : decodeURIComponent(v));
  const host = dec(m[4])?.replace(/^\[|\]$/g, '') ?? null;
  const socket = kind === 'mysql' ? q.get('unix_socket') : q.get('host')?.startsWith('/') ? q.get('host') : null;
  const ca = q.get('ssl_ca') ?? q.get('sslrootcert');
  const cert = q.get('ssl_cert') ?? q.get('sslcert');
  const key = q.get('ssl_key') ?? q.get('sslkey');
  const mode = q.get('sslmode');
  const required = ca !== null || cert !== null || (mode !== null && mode !== 'disable' && mode !== 'allow' && mode !== 'prefer') || q.get('ssl') === 'true';
  return {
    kind,
    host: host ?? (kind === 'postgres' && !socket ? q.get('host') : null),
    port: m[5] ? Number(m[5]) : null,
    user: dec(m[2]),
    password: dec(m[3]),
    database: dec(m[6]),
    socket,
    tls: required ? { ca, cert, key, required } : null,
  };
}
