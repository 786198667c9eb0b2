// A fresh PostgreSQL 15 primary for a test or a benchmark: run as the
// `postgres` OS user (the server refuses root), on a free loopback port, in a
// temporary directory, archiving through `lifeboat archive-push`, fsync off.
// `stop()` removes what it made; a process exit stops any server still
// running. Trust auth on loopback: never for production (sandbox-pg.ts).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { lifeboatCommand } from '../tools';
import { freePort, waitFor } from './ports';
import {
  asOsUser,
  chownToOsUser,
  initSandboxPrimary,
  pgCtl as pgCtlAs,
  startSandboxPrimary,
  type SandboxPg,
} from './sandbox-pg';

export const PG_BIN = process.env.LIFEBOAT_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const running = new Set<string>();

process.on('exit', () => {
  for (const dataDir of running) {
    try {
      execFileSync(
        'runuser',
        ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', dataDir, 'stop', '-m', 'immediate', '-w'],
        { stdio: 'ignore' },
      );
    } catch {
      /* already down */
    }
  }
});

export interface PrimaryOptions {
  /** archive-push target; without it archiving is off. */
  archive?: {
    repo: string;
    cluster: string;
    env?: Record<string, string>;
    /** More archive-push options (e.g. --encryption-key). */ args?: string[];
  };
  /** Extra postgresql.conf lines. */
  conf?: string[];
  /** More initdb options (--wal-segsize=1: a cluster not made with PostgreSQL's default segment size). */
  initdb?: string[];
  /** The first WAL segment the new cluster writes (pg_resetwal -l before its first start): a cluster far into its WAL without writing it. */
  walStart?: string;
}

export interface Primary {
  port: number;
  dataDir: string;
  /** Temporary directory holding dataDir, the socket and logs; owned by postgres. */
  root: string;
  logFile: string;
  /** Connection settings for the superuser `postgres` (trust on loopback: tests only). */
  connection: { host: string; port: number; user: string; database: string };
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** pg_ctl as the postgres user. */
  pgCtl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** A temporary directory the postgres user owns. */
export function postgresTempDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-${label}-`));
  chownToOsUser(dir, 'postgres');
  chmodSync(dir, 0o700);
  return dir;
}

export async function startPrimary(opts: PrimaryOptions = {}): Promise<Primary> {
  const root = postgresTempDir('pg');
  const sandbox: SandboxPg = {
    dataDir: path.join(root, 'data'),
    port: await freePort(),
    socketDir: root,
    logFile: path.join(root, 'postgres.log'),
    pgBin: PG_BIN,
    osUser: 'postgres',
    env: opts.archive?.env ?? {},
  };
  const { dataDir, port, logFile } = sandbox;
  await initSandboxPrimary(sandbox, {
    archiveCommand: opts.archive
      ? `${lifeboatCommand()} archive-push %p --repo ${opts.archive.repo} --cluster ${opts.archive.cluster}${(opts.archive.args ?? []).map((a) => ` ${a}`).join('')}`
      : undefined,
    conf: ['fsync = off', ...(opts.conf ?? [])],
    ...(opts.initdb ? { initdb: opts.initdb } : {}),
  });
  const pgCtl = (...args: string[]) => pgCtlAs(sandbox, ...args);
  if (opts.walStart) await asOsUser('postgres', `${PG_BIN}/pg_resetwal`, ['-l', opts.walStart, dataDir]);
  await startSandboxPrimary(sandbox);
  running.add(dataDir);

  const connection = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
  const query = async <T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> => {
    const client = new Client(connection);
    await client.connect();
    try {
      const res = await client.query(sql, params);
      return res.rows as T[];
    } finally {
      await client.end();
    }
  };
  await waitFor('postgres to accept connections', async () =>
    (await query('select 1')).length === 1 ? true : undefined,
  );

  return {
    port,
    dataDir,
    root,
    logFile,
    connection,
    query,
    pgCtl,
    async stop() {
      if (running.has(dataDir)) {
        await pgCtl('stop', '-m', 'fast', '-w').catch(() => pgCtl('stop', '-m', 'immediate', '-w').catch(() => ''));
        running.delete(dataDir);
      }
      // The directory is the harness's own temporary directory: provably ours.
      if (existsSync(root)) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Forces a segment switch and waits until the archiver has archived it. */
export async function switchAndWaitArchived(pg: Primary, timeoutMs = 60_000): Promise<string> {
  const [row] = await pg.query<{ walfile: string }>(`select pg_walfile_name(pg_switch_wal()) as walfile`);
  const walfile = row!.walfile;
  await waitFor(
    `segment ${walfile} to be archived`,
    async () => {
      const [s] = await pg.query<{
        last_archived_wal: string | null;
        failed_count: string;
        last_failed_wal: string | null;
      }>('select last_archived_wal, failed_count, last_failed_wal from pg_stat_archiver');
      if (!s || s.last_archived_wal === null || s.last_archived_wal < walfile) return undefined;
      // A backup history file (…05.00000028.backup) sorts after its segment and
      // is archived after it: wait for every file up to this segment, not only
      // the segment, or a test listing the repository next may miss it.
      const pending = readdirSync(path.join(pg.dataDir, 'pg_wal', 'archive_status')).filter(
        (f) => f.endsWith('.ready') && f.slice(0, 24) <= walfile,
      );
      return pending.length === 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
  return walfile;
}
