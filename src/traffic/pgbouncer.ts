// pgbouncer: clients keep their address (pgbouncer's) while the server
// behind it changes, without a dropped connection:
//   PAUSE <db>    wait for in-flight work, close server connections; new
//                 clients queue
//   rewrite       the <db> line of the databases file (old file kept aside)
//   RELOAD        pgbouncer reads it again
//   RESUME <db>   queued clients connect, to the new server
//   SHOW DATABASES  proves pgbouncer now points where we meant
// Whatever fails after PAUSE, RESUME is attempted before the error is
// raised: a paused pgbouncer is an outage of its own.
//
// Idempotent: a retry after a crash finds the file or pgbouncer already
// switched and does only what is left (at least a RESUME).
import { LifeboatError, errorMessage, isLifeboatError, withContext } from '../errors';
import type { TrafficResult } from '../recovery/contract';
import { urlFromEnv } from '../endpoints/secret-url';
import { PROBE_TIMEOUT_MS } from '../endpoints/probe';
import { pointsAt, readDatabaseLine, replaceDatabasesFile, rewrittenText } from './databases-file';
import { PgbouncerAdmin, adminIdent, type PgbouncerDatabase } from './pgbouncer-admin';
import { describeTarget, type RestoredTarget, type TrafficContext, type TrafficSwitcher } from './types';

/** How long PAUSE may wait for clients to release their server connections. */
export const PAUSE_TIMEOUT_MS = 120_000;

export interface PgbouncerConfig {
  adminUrlEnv: string;
  database: string;
  databasesFile: string;
}

function at(db: PgbouncerDatabase): string {
  return `${db.host ?? '(unix socket)'}:${db.port}/${db.database}`;
}

function servesTarget(db: PgbouncerDatabase, t: RestoredTarget): boolean {
  return db.host === t.host && db.port === t.port && db.database === t.database;
}

export function pgbouncerSwitcher(
  cfg: PgbouncerConfig,
  runbook: string,
  opts: { pauseTimeoutMs?: number } = {},
): TrafficSwitcher {
  const url = urlFromEnv(cfg.adminUrlEnv, {
    runbook,
    what: "pgbouncer's admin console",
    protocols: ['postgres:', 'postgresql:'],
  });
  const name = cfg.database;
  const ident = adminIdent(name);
  const pauseTimeoutMs = opts.pauseTimeoutMs ?? PAUSE_TIMEOUT_MS;
  const consoleHint = `look with: psql "$${cfg.adminUrlEnv}" -c 'SHOW DATABASES'`;

  return {
    kind: 'pgbouncer',
    async switchTo(target: RestoredTarget, ctx: TrafficContext): Promise<TrafficResult> {
      const steps: string[] = [];
      const pointedAt = describeTarget(target);
      ctx.progress({ phase: 'checking' });
      // Everything that can be checked is checked before PAUSE, while
      // clients still run.
      const line = await readDatabaseLine(cfg.databasesFile, name);
      const admin = await PgbouncerAdmin.connect(url, cfg.adminUrlEnv);
      try {
        const before = await admin.database(name);
        if (!before) {
          throw new LifeboatError('TRAFFIC_SWITCH_FAILED', `${admin.label} has no database ${name}`, {
            hints: [`traffic.pgbouncer.database must be a name listed by SHOW DATABASES; ${consoleHint}`],
          });
        }
        if (servesTarget(before, target) && pointsAt(line, target)) {
          if (before.paused) {
            await admin.run(`RESUME ${ident}`);
            steps.push(`RESUME ${name}: it was left paused`);
          }
          steps.push(`${name} already points at ${pointedAt}: nothing to switch`);
          return { kind: 'pgbouncer', pointedAt, steps };
        }

        ctx.progress({ phase: 'pausing' });
        let paused: boolean;
        try {
          paused = await admin.pause(name, {
            timeoutMs: pauseTimeoutMs,
            onWait: async () => {
              ctx.signal?.throwIfAborted();
              const seen = await observe(url, cfg.adminUrlEnv, name);
              ctx.progress({ phase: 'pausing', waitingForClients: seen?.count });
            },
          });
        } catch (err) {
          // PAUSE refused, the connection lost, or the step cancelled: the
          // database may be paused all the same.
          const failure = await resumeAfter(err, steps);
          throw ctx.signal?.aborted ? err : failure;
        }
        if (!paused) {
          const seen = await observe(url, cfg.adminUrlEnv, name);
          const waiting = seen
            ? `${seen.count} client connection${seen.count === 1 ? '' : 's'} still held a server connection${seen.who.length > 0 ? ` (${seen.who.join(', ')})` : ''}`
            : 'clients still held server connections';
          const failure = new LifeboatError(
            'TRAFFIC_SWITCH_FAILED',
            `PAUSE ${name} on ${admin.label} did not finish within ${Math.round(pauseTimeoutMs / 1000)} s: ${waiting}`,
            {
              hints: [
                seen?.poolMode === 'session'
                  ? 'in session pooling PAUSE waits until each client disconnects: restart or drain the application, then retry the step'
                  : 'PAUSE waits for running transactions: find the long one (pg_stat_activity on the old primary), end it, then retry the step',
              ],
            },
          );
          throw await resumeAfter(failure, [...steps, `PAUSE ${name}: gave up waiting`]);
        }
        steps.push(`PAUSE ${name}: in-flight transactions finished, server connections closed`);

        try {
          ctx.progress({ phase: 'switching' });
          if (pointsAt(line, target)) {
            steps.push(`${cfg.databasesFile} already points ${name} at ${pointedAt}`);
          } else {
            const was = `${line.current.host ?? '(default)'}:${line.current.port ?? '(default)'}/${line.current.dbname ?? name}`;
            const kept = await replaceDatabasesFile(line, rewrittenText(line, target)).catch((err: unknown) => {
              throw withContext(`rewriting ${cfg.databasesFile}`, err);
            });
            steps.push(
              `${cfg.databasesFile}: ${name} from ${was} to host=${target.host} port=${target.port} dbname=${target.database} (old file kept as ${kept})`,
            );
          }
          await admin.run('RELOAD');
          steps.push('RELOAD');
          ctx.progress({ phase: 'resuming' });
          await admin.run(`RESUME ${ident}`);
          steps.push(`RESUME ${name}`);
          ctx.progress({ phase: 'verifying' });
          const after = await admin.database(name);
          if (!after || !servesTarget(after, target) || after.paused) {
            const seen = after ? `${at(after)}${after.paused ? ', paused' : ''}` : 'no such database';
            throw new LifeboatError(
              'TRAFFIC_SWITCH_FAILED',
              `after RELOAD, SHOW DATABASES on ${admin.label} shows ${name} at ${seen}, not at ${pointedAt}`,
              {
                hints: [
                  `is ${cfg.databasesFile} the file pgbouncer.ini includes under [databases] (%include)? pgbouncer read another one`,
                  'a line in pgbouncer.ini itself for the same database would also win; check its log for RELOAD errors',
                ],
              },
            );
          }
          steps.push(`SHOW DATABASES: ${name} at ${at(after)}`);
        } catch (err) {
          const failure = await resumeAfter(err, steps);
          throw ctx.signal?.aborted ? err : failure;
        }
        return { kind: 'pgbouncer', pointedAt, steps };
      } finally {
        await admin.close();
      }
    },

    // Preflight: the console answers SHOW VERSION, lists the database, and
    // the databases file has its one line in a directory the worker may
    // write. Reads only: no PAUSE, no RELOAD.
    async check(): Promise<string> {
      const refuse = (err: unknown, extra: string[] = []) =>
        isLifeboatError(err)
          ? new LifeboatError('ENDPOINT_UNREACHABLE', err.what, { hints: [...err.hints, ...extra], cause: err })
          : new LifeboatError('ENDPOINT_UNREACHABLE', errorMessage(err), { hints: extra, cause: err });
      const line = await readDatabaseLine(cfg.databasesFile, name).catch((err: unknown) => {
        throw refuse(err);
      });
      const admin = await PgbouncerAdmin.connect(url, cfg.adminUrlEnv).catch((err: unknown) => {
        throw refuse(err);
      });
      try {
        const version = await answered(admin.run('SHOW VERSION'), `SHOW VERSION on ${admin.label}`);
        const db = await answered(admin.database(name), `SHOW DATABASES on ${admin.label}`);
        if (!db) {
          throw new LifeboatError('ENDPOINT_UNREACHABLE', `${admin.label} has no database ${name}`, {
            hints: [`traffic.pgbouncer.database must be a name listed by SHOW DATABASES; ${consoleHint}`],
          });
        }
        const v =
          Object.values(version[0] ?? {})
            .map(String)
            .join(' ') || 'an empty SHOW VERSION';
        return `${admin.label}: ${v}; ${name} at ${at(db)}; line ${line.index + 1} of ${cfg.databasesFile}`;
      } catch (err) {
        if (isLifeboatError(err) && err.code === 'ENDPOINT_UNREACHABLE') throw err;
        throw refuse(err, [
          `is pgbouncer up and reachable from the worker of the traffic host? (${consoleHint.replace('look with: ', '')})`,
        ]);
      } finally {
        await admin.close();
      }
    },
  };

  /** p, or ENDPOINT_UNREACHABLE when the console says nothing within PROBE_TIMEOUT_MS (a stopped pgbouncer still accepts connections). */
  async function answered<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LifeboatError('ENDPOINT_UNREACHABLE', `${what}: no answer within ${PROBE_TIMEOUT_MS / 1000} s`, {
              hints: [`is pgbouncer stopped or hung? (${consoleHint.replace('look with: ', '')})`],
            }),
          ),
        PROBE_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([p, silent]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SHOW POOLS and CLIENTS on a second connection (the first waits in PAUSE); undefined when that fails too. */
  async function observe(u: URL, envName: string, database: string) {
    let other: PgbouncerAdmin | undefined;
    try {
      other = await PgbouncerAdmin.connect(u, envName);
      return await other.activeClients(database);
    } catch {
      return undefined;
    } finally {
      await other?.close();
    }
  }

  /**
   * RESUME on a fresh connection (the first may be broken, or stuck in
   * PAUSE), then the error to raise: what failed, what was done, and
   * whether clients run again.
   */
  async function resumeAfter(err: unknown, done: string[]): Promise<LifeboatError> {
    let resumed: string;
    let resumeHint: string[] = [];
    let other: PgbouncerAdmin | undefined;
    try {
      other = await PgbouncerAdmin.connect(url, cfg.adminUrlEnv);
      const db = await other.database(name);
      if (db?.paused) await other.run(`RESUME ${ident}`);
      const now = await other.database(name);
      resumed = `pgbouncer was resumed: clients of ${name} go on to ${now ? at(now) : 'wherever it points'}`;
    } catch (resumeErr) {
      resumed = `RESUME ${name} failed too, clients may still be waiting: ${isLifeboatError(resumeErr) ? resumeErr.what : errorMessage(resumeErr)}`;
      resumeHint = [`RESUME it by hand now: psql "$${cfg.adminUrlEnv}" -c 'RESUME ${ident}'`];
    } finally {
      await other?.close();
    }
    const what = isLifeboatError(err) ? err.what : errorMessage(err);
    const doneLine = done.length > 0 ? `\ndone before the failure: ${done.join('; ')}` : '';
    return new LifeboatError(
      'TRAFFIC_SWITCH_FAILED',
      `switching pgbouncer database ${name} failed: ${what}\n${resumed}${doneLine}`,
      {
        hints: [
          ...resumeHint,
          ...(isLifeboatError(err) ? err.hints : []),
          consoleHint,
          'the step can be retried: what is already switched is not done again, and old databases files are kept, never deleted',
        ],
        cause: err,
        details: { steps: done },
      },
    );
  }
}
