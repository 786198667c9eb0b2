// A throwaway pgbouncer for a test, in front of a test PostgreSQL: the Debian
// binary on a free loopback port, trust authentication (tests only), session
// pooling, and the [databases] section kept in a separate file that
// pgbouncer.ini includes, the layout `resumeTraffic` rewrites.
//
// pgbouncer refuses to run as root; as root we start it with `-u postgres`
// (it reads its configuration, then drops to that user), so the child we
// hold is pgbouncer itself and a signal reaches it without a runuser in
// between. Everything lives in a postgres-owned temporary directory, because
// RELOAD re-reads the files as that user.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { stopChild } from '../../src/dev/child';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import { freePort, waitFor } from './ports';
import { postgresTempDir } from './postgres';

export const PGBOUNCER = process.env.LIFEBOAT_PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface TestPgbouncer {
  port: number;
  /** postgresql://postgres@127.0.0.1:<port>/pgbouncer (admin_users = postgres). */
  adminUrl: string;
  /** The file included under [databases]; one line `<database> = host=... port=... dbname=...`. */
  databasesFile: string;
  iniFile: string;
  /** The temporary directory holding every file above and the log. */
  root: string;
  logFile: string;
  /** One admin-console command (simple query protocol), rows as returned. */
  admin(command: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface PgbouncerOptions {
  /** The database name clients use, and the upstream dbname. */
  database: string;
  /** Upstream PostgreSQL. */
  host: string;
  port: number;
  /** Another role clients log in as; postgres is always allowed. */
  authUser?: string;
}

/** A file written as root, handed to postgres (pgbouncer reads it after dropping root). */
function writeOwned(file: string, text: string, mode = 0o600): void {
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  chownToOsUser(file, 'postgres');
}

export async function startPgbouncer(opts: PgbouncerOptions): Promise<TestPgbouncer> {
  const root = postgresTempDir('pgbouncer');
  const port = await freePort();
  const iniFile = path.join(root, 'pgbouncer.ini');
  const databasesFile = path.join(root, 'databases.ini');
  const authFile = path.join(root, 'userlist.txt');
  const logFile = path.join(root, 'pgbouncer.log');
  const users = ['postgres', ...(opts.authUser && opts.authUser !== 'postgres' ? [opts.authUser] : [])];

  // 0600 and owned by postgres, like a real deployment's file: a rewrite
  // that lost the owner or the mode would make RELOAD fail to read it.
  writeOwned(databasesFile, `${opts.database} = host=${opts.host} port=${opts.port} dbname=${opts.database}\n`);
  // With auth_type = trust pgbouncer still looks the user up in auth_file.
  writeOwned(authFile, users.map((u) => `"${u}" ""`).join('\n') + '\n');
  writeOwned(
    iniFile,
    [
      '[databases]',
      `%include ${databasesFile}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${root}`,
      'auth_type = trust',
      `auth_file = ${authFile}`,
      'admin_users = postgres',
      'pool_mode = session',
      `logfile = ${logFile}`,
      `pidfile = ${path.join(root, 'pgbouncer.pid')}`,
      // A test's upstream comes and goes quickly; do not wait the default 15 s to retry.
      'server_login_retry = 1',
      '',
    ].join('\n'),
  );

  const isRoot = process.getuid?.() === 0;
  const stderrFile = path.join(root, 'pgbouncer.stderr');
  const err = openSync(stderrFile, 'a');
  const child = spawn(PGBOUNCER, [...(isRoot ? ['-u', 'postgres'] : []), iniFile], {
    stdio: ['ignore', 'ignore', err],
  });
  closeSync(err);
  running.add(child);

  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/pgbouncer`;
  const admin = async (command: string): Promise<Record<string, unknown>[]> => {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    try {
      return (await client.query(command)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const stop = async () => {
    await stopChild(child);
    running.delete(child);
    // The harness's own temporary directory: provably ours.
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitFor('pgbouncer to answer on its admin console', async () => {
      if (child.exitCode !== null) {
        const said = [stderrFile, logFile]
          .filter(existsSync)
          .map((f) => readFileSync(f, 'utf8'))
          .join('\n');
        throw new Error(`pgbouncer exited with ${child.exitCode}: ${said.slice(-2000)}`);
      }
      return (await admin('SHOW VERSION')).length > 0 ? true : undefined;
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, adminUrl, databasesFile, iniFile, root, logFile, admin, stop };
}
