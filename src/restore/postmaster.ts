// pg_ctl for a data directory on this host, always as the OS user: whether a
// postmaster runs there, stopping it, starting it detached, and reading the
// end of its log when it died.
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { mustRunAsOsUser, osUserIds, runAsOsUser } from './os-user';

export interface PgHost {
  dataDir: string;
  /** runbook cluster.pgBin */
  pgBin: string;
  /** runbook cluster.osUser */
  osUser: string;
}

/** Whether a postmaster runs in dataDir, as pg_ctl status sees it (it checks the pid in postmaster.pid is alive). */
export async function postmasterRunning(pg: PgHost): Promise<boolean> {
  if (!existsSync(path.join(pg.dataDir, 'postmaster.pid'))) return false;
  const r = await runAsOsUser(pg.osUser, `${pg.pgBin}/pg_ctl`, ['status', '-D', pg.dataDir]);
  // 0: running; 3: not running (a stale postmaster.pid); 4: not a readable data directory.
  return r.code === 0;
}

const STOP_TIMEOUT_S = 120;

/** pg_ctl stop -m fast, waiting; true when a postmaster was running. */
export async function stopPostmaster(pg: PgHost, why: string): Promise<boolean> {
  if (!(await postmasterRunning(pg))) return false;
  await mustRunAsOsUser(
    pg.osUser,
    `${pg.pgBin}/pg_ctl`,
    ['stop', '-D', pg.dataDir, '-m', 'fast', '-w', '-t', String(STOP_TIMEOUT_S)],
    {
      what: `pg_ctl stop -m fast in ${pg.dataDir} (${why})`,
      code: 'PG_RUNNING',
      hints: [
        `PostgreSQL in ${pg.dataDir} is still running; nothing was moved or changed`,
        `stop it by hand (as ${pg.osUser}): ${pg.pgBin}/pg_ctl stop -D ${pg.dataDir} -m fast, then retry the step`,
      ],
    },
  );
  return true;
}

/**
 * pg_ctl start without waiting (-W): the caller waits, heartbeating, since
 * reaching a consistent state can take as long as the backup's own WAL
 * takes to restore. pg_ctl detaches the postmaster (its own session), so it
 * outlives this worker: a worker killed mid-replay leaves replay running.
 */
export async function startPostmaster(pg: PgHost, logFile: string, env: Record<string, string>): Promise<void> {
  await mustRunAsOsUser(pg.osUser, `${pg.pgBin}/pg_ctl`, ['start', '-D', pg.dataDir, '-l', logFile, '-W'], {
    what: `pg_ctl start in ${pg.dataDir}`,
    env,
    hints: [`the server log is ${logFile}`],
  });
}

/**
 * Where the restored postmaster puts its socket and log: the data directory's
 * parent when the OS user owns it (as /var/lib/postgresql/15 is), else the data
 * directory itself. Never /var/run/postgresql: it belongs to the host's own
 * clusters, and a socket left there would answer for a port that is not theirs.
 */
export async function runFiles(pg: PgHost): Promise<{ socketDir: string; logFile: string }> {
  const parent = path.dirname(pg.dataDir);
  const { uid } = await osUserIds(pg.osUser);
  const parentIsTheirs = await stat(parent).then(
    (s) => s.uid === uid,
    () => false,
  );
  if (parentIsTheirs) return { socketDir: parent, logFile: `${pg.dataDir}.lifeboat-postgres.log` };
  return { socketDir: pg.dataDir, logFile: path.join(pg.dataDir, 'lifeboat-postgres.log') };
}

/** Size of a file, 0 when absent: where the lines of a new start begin in an appended log. */
export async function fileSize(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** The log's text from `from` on (at most the last `max` bytes of it). */
export async function readLogFrom(logFile: string, from = 0, max = 64 * 1024): Promise<string> {
  let handle;
  try {
    handle = await open(logFile, 'r');
  } catch {
    return '';
  }
  try {
    const size = (await handle.stat()).size;
    const start = Math.max(from, size - max, 0);
    if (start >= size) return '';
    const buf = Buffer.alloc(size - start);
    await handle.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The last `n` non-empty lines of a text, for quoting in an error. */
export function lastLines(text: string, n = 8): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n);
}

/** Throws BACKUP_NOT_FOUND unless the directory holds a PostgreSQL data directory. */
export function requirePgData(dataDir: string, what: string): void {
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    throw new LifeboatError(
      'BACKUP_NOT_FOUND',
      `${dataDir} holds no PostgreSQL data directory (no PG_VERSION) ${what}`,
      {
        hints: ['run restore-base-backup first; was the directory moved or removed by hand?'],
      },
    );
  }
}
