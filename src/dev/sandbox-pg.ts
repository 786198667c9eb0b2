// A throwaway PostgreSQL primary for the demo and the tests: initdb, a
// loopback-only configuration that trusts local connections, archiving
// through `lifeboat archive-push`. Never for production: trust auth.
// PostgreSQL refuses to run as root, so everything runs as the OS user.
import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SandboxPg {
  dataDir: string;
  port: number;
  /** Where the server puts its socket (keep it inside the sandbox, not /var/run). */
  socketDir: string;
  logFile: string;
  pgBin: string;
  osUser: string;
  /** Environment for the postmaster and so for archive_command (S3 settings in tests). */
  env?: Record<string, string>;
}

/** Runs a command as the OS user (via runuser when we are root, directly otherwise). */
export async function asOsUser(
  user: string,
  bin: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const isRoot = process.getuid?.() === 0;
  const [cmd, argv] = isRoot
    ? ['runuser', ['-u', user, '--', 'env', ...envArgs, bin, ...args]]
    : ['env', [...envArgs, bin, ...args]];
  const { stdout } = await execFileAsync(cmd, argv, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Gives a directory we created to the OS user that runs PostgreSQL. */
export function chownToOsUser(dir: string, user: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
  chownSync(dir, uid, gid);
}

export async function initSandboxPrimary(
  pg: SandboxPg,
  opts: {
    archiveCommand?: string;
    conf?: string[];
    /** More initdb options, e.g. --wal-segsize=1. */ initdb?: string[];
  } = {},
): Promise<void> {
  if (existsSync(path.join(pg.dataDir, 'PG_VERSION'))) return;
  mkdirSync(pg.socketDir, { recursive: true });
  chownToOsUser(pg.socketDir, pg.osUser);
  await asOsUser(pg.osUser, `${pg.pgBin}/initdb`, [
    '-D',
    pg.dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
    ...(opts.initdb ?? []),
  ]);
  const conf = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${pg.port}`,
    `unix_socket_directories = '${pg.socketDir}'`,
    `wal_level = replica`,
    `max_wal_senders = 10`,
    `log_min_messages = warning`,
    ...(opts.archiveCommand
      ? [`archive_mode = on`, `archive_command = '${opts.archiveCommand.replace(/'/g, "''")}'`]
      : []),
    ...(opts.conf ?? []),
  ];
  appendFileSync(path.join(pg.dataDir, 'postgresql.conf'), `\n# lifeboat sandbox\n${conf.join('\n')}\n`);
  writeFileSync(
    path.join(pg.dataDir, 'pg_hba.conf'),
    ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust', ''].join(
      '\n',
    ),
  );
}

export function pgCtl(pg: SandboxPg, ...args: string[]): Promise<string> {
  return asOsUser(pg.osUser, `${pg.pgBin}/pg_ctl`, ['-D', pg.dataDir, ...args], pg.env ?? {});
}

/**
 * Starts the sandbox's postmaster; when it does not come up, the error holds
 * the end of its log (why it stopped: a port taken, a bad setting), which
 * pg_ctl only says to examine.
 */
export async function startSandboxPrimary(pg: SandboxPg): Promise<void> {
  try {
    await pgCtl(pg, '-l', pg.logFile, '-w', '-t', '60', 'start');
  } catch (err) {
    const tail = existsSync(pg.logFile) ? readFileSync(pg.logFile, 'utf8').trimEnd().split('\n').slice(-15) : [];
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\nthe end of ${pg.logFile}:\n${tail.join('\n') || '(empty)'}`,
      { cause: err },
    );
  }
}

export async function stopSandboxPrimary(pg: SandboxPg, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  await pgCtl(pg, 'stop', '-m', mode, '-w').catch(() => pgCtl(pg, 'stop', '-m', 'immediate', '-w').catch(() => ''));
}
