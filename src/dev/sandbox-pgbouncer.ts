// The sandbox's pgbouncer: the address the demo application uses
// (127.0.0.1:<port>/appdb), which the recovery's resume-traffic step moves to
// the promoted copy. [databases] is a file of its own that pgbouncer.ini
// %includes, the layout the runbook's traffic.pgbouncer.databasesFile names.
// That file is written once, pointing at the sandbox primary, and then left
// to resume-traffic: after a recovery it points at the promoted copy, and a
// restart must not undo that. pgbouncer.ini itself is written on every start
// (the port may change).
//
// Trust authentication on loopback: a sandbox only. pgbouncer refuses to run
// as root; as root it is started with `-u <osUser>` (it reads its
// configuration, then drops to that user), so the child we hold is pgbouncer
// itself, and its directory belongs to that user, because RELOAD re-reads
// the files and the pid file is written after the switch.
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { startDaemon } from './daemon';
import { chownToOsUser } from './sandbox-pg';

export const PGBOUNCER = process.env.LIFEBOAT_PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

export interface SandboxPgbouncerOptions {
  /** Owned by osUser (when we are root). */
  dir: string;
  port: number;
  /** The database clients ask for; also the upstream dbname. */
  database: string;
  /** Where the database line points when the databases file is first written. */
  upstream: { host: string; port: number };
  /** Roles that may log in (pgbouncer looks them up in auth_file even with trust). */
  users: string[];
  osUser: string;
  say(line: string): void;
}

export interface SandboxPgbouncer {
  port: number;
  /** postgresql://postgres@127.0.0.1:<port>/pgbouncer (admin_users = postgres). */
  adminUrl: string;
  databasesFile: string;
  stop(): Promise<void>;
}

/** Mode 0600 and owned by the OS user, like a real deployment's file: resume-traffic keeps owner and mode when it rewrites. */
function writeOwned(file: string, text: string, osUser: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  chownToOsUser(file, osUser);
}

export async function startSandboxPgbouncer(opts: SandboxPgbouncerOptions): Promise<SandboxPgbouncer> {
  const ini = path.join(opts.dir, 'pgbouncer.ini');
  const databasesFile = path.join(opts.dir, 'databases.ini');
  const authFile = path.join(opts.dir, 'userlist.txt');
  const pidFile = path.join(opts.dir, 'pgbouncer.pid');
  if (!existsSync(databasesFile)) {
    const { host, port } = opts.upstream;
    writeOwned(databasesFile, `${opts.database} = host=${host} port=${port} dbname=${opts.database}\n`, opts.osUser);
  }
  writeOwned(authFile, opts.users.map((u) => `"${u}" ""`).join('\n') + '\n', opts.osUser);
  writeOwned(
    ini,
    [
      '[databases]',
      `%include ${databasesFile}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${opts.port}`,
      // No Unix socket: clients use the TCP address, and a deep state
      // directory could exceed the socket path limit.
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${authFile}`,
      'admin_users = postgres',
      'pool_mode = session',
      `pidfile = ${pidFile}`,
      // The upstream changes during a recovery; do not wait the default 15 s to retry a login.
      'server_login_retry = 1',
      '',
    ].join('\n'),
    opts.osUser,
  );
  const adminUrl = `postgresql://postgres@127.0.0.1:${opts.port}/pgbouncer`;
  const isRoot = process.getuid?.() === 0;
  const daemon = await startDaemon({
    name: 'pgbouncer',
    bin: PGBOUNCER,
    args: [...(isRoot ? ['-u', opts.osUser] : []), ini],
    // No logfile in the ini: pgbouncer logs to stderr, which goes here.
    logFile: path.join(opts.dir, 'pgbouncer.log'),
    pidFile,
    mark: ini,
    ready: async () => {
      const admin = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
      await admin.connect();
      try {
        return (await admin.query('SHOW VERSION')).rows.length > 0;
      } finally {
        await admin.end();
      }
    },
    hints: [`is port ${opts.port} already in use? pass another --pgbouncer-port`],
    say: opts.say,
  });
  return { port: opts.port, adminUrl, databasesFile, stop: daemon.stop };
}
