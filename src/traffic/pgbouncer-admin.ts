// pgbouncer's admin console: the virtual database `pgbouncer`, which speaks
// the simple query protocol only, so every command goes through
// `client.query(text)` with no parameters (pg then sends a simple Query);
// names are quoted here instead, the way the console's parser reads them
// (admin.c: a bare word of [0-9a-z_], or "double quoted").
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { hostOf, redact } from '../endpoints/secret-url';

export interface PgbouncerDatabase {
  name: string;
  host: string | null;
  port: number;
  database: string;
  paused: boolean;
}

export function adminIdent(name: string): string {
  return /^[0-9a-z_]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export class PgbouncerAdmin {
  private constructor(
    private readonly client: Client,
    private readonly url: URL,
    /** "pgbouncer at $PGBOUNCER_ADMIN_URL (127.0.0.1:6432)": never the URL itself. */
    readonly label: string,
  ) {}

  static async connect(url: URL, envName: string): Promise<PgbouncerAdmin> {
    const label = `pgbouncer at $${envName} (${hostOf(url, 6432)})`;
    const admin = new URL(url.href);
    // The console is the database named pgbouncer, whatever the URL says.
    admin.pathname = '/pgbouncer';
    const client = new Client({ connectionString: admin.href, connectionTimeoutMillis: 10_000 });
    // A connection lost while idle emits 'error'; unhandled it would crash the worker.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new LifeboatError(
        'TRAFFIC_SWITCH_FAILED',
        `cannot connect to the admin console of ${label}: ${redact(errorMessage(err), url)}`,
        {
          hints: [
            `is pgbouncer running and reachable from this worker? (psql "$${envName}" -c 'SHOW VERSION')`,
            `the user in ${envName} must be listed in admin_users of pgbouncer.ini`,
          ],
          cause: err,
        },
      );
    }
    return new PgbouncerAdmin(client, url, label);
  }

  /** One console command; errors name the command and the console, never the URL. */
  async run(command: string): Promise<Record<string, unknown>[]> {
    try {
      return (await this.client.query(command)).rows as Record<string, unknown>[];
    } catch (err) {
      throw new LifeboatError(
        'TRAFFIC_SWITCH_FAILED',
        `${command} on ${this.label} failed: ${redact(errorMessage(err), this.url)}`,
        { cause: err },
      );
    }
  }

  async database(name: string): Promise<PgbouncerDatabase | undefined> {
    const row = (await this.run('SHOW DATABASES')).find((r) => r.name === name);
    if (!row) return undefined;
    return {
      name,
      host: typeof row.host === 'string' ? row.host : null,
      port: Number(row.port),
      database: String(row.database),
      paused: Number(row.paused) === 1,
    };
  }

  /** Client connections of a database that still hold a server connection, with who they are. */
  async activeClients(database: string): Promise<{ count: number; who: string[]; poolMode?: string }> {
    const pools = (await this.run('SHOW POOLS')).filter((r) => r.database === database);
    const count = pools.reduce((n, r) => n + Number(r.sv_active ?? 0), 0);
    const poolMode = pools.map((r) => r.pool_mode).find((m): m is string => typeof m === 'string');
    const who = (await this.run('SHOW CLIENTS'))
      .filter((r) => r.database === database && r.state === 'active')
      .slice(0, 5)
      .map(
        (r) =>
          `${String(r.user)}@${String(r.addr)}:${String(r.port)}${r.application_name ? ` (${String(r.application_name)})` : ''}`,
      );
    return { count, who, poolMode };
  }

  /**
   * PAUSE: pgbouncer closes idle server connections and answers once every
   * active one is released, which is after the current transaction in
   * transaction pooling but only when the client disconnects in session
   * pooling. New clients wait meanwhile. Gives up after `timeoutMs`: this
   * connection is then closed (its PAUSE still pending) and the caller must
   * RESUME on a new one.
   */
  async pause(database: string, opts: { timeoutMs: number; onWait: () => Promise<void> }): Promise<boolean> {
    const pausing = this.run(`PAUSE ${adminIdent(database)}`).then(() => true);
    // Never an unhandled rejection when the wait is abandoned below.
    pausing.catch(() => undefined);
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        await this.close();
        return false;
      }
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.min(left, 5000))));
      const done = await Promise.race([pausing, tick]);
      clearTimeout(timer);
      if (done) return true;
      await opts.onWait();
    }
  }

  /** Ends the connection; pg drops the socket when a command (a PAUSE) is still pending. */
  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
