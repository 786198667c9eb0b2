// `lifeboat dev-incident`: the demo's incident, played against the sandbox of
// a running `lifeboat dev`. The application, through pgbouncer, runs
//   UPDATE orders SET status = 'canceled' WHERE status = 'pending'
// Before it, the WAL written so far is archived and a safe target is read
// from the primary's own clock, the one recovery_target_time is compared
// with. After it, the WAL holding the UPDATE is archived too: recovery to a
// time stops at the first commit after it, and must find that commit in the
// archive, or it ends before the target. Then it prints how to recover, from
// the Temporal UI or from the CLI, and how to check the result.
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientConfig } from 'pg';
import { LifeboatError, errorMessage } from '../../errors';
import { cacheOrders } from '../../dev/sandbox-redis';
import { DEMO_DATABASE, cliPath, promotedCopy, runningSandbox, type SandboxState } from '../../dev/sandbox-state';
import type { RecoveryInput } from '../../recovery/contract';
import { TASK_QUEUE } from '../../runbook/schema';
import { printJson } from '../run';
import { CHECKLIST_TAB } from '../ui-link';

export const INCIDENT_SQL = "UPDATE orders SET status = 'canceled' WHERE status = 'pending'";
const RUNBOOK = 'demo';
const INCIDENT = 'DEMO-1';
const REASON = 'bad UPDATE on orders';
/** How long the target lies before the incident: a whole second and some, whatever the clock's rounding. */
const GAP_MS = 1100;
const ARCHIVE_TIMEOUT_MS = 60_000;

export interface IncidentReport {
  /** ISO 8601, UTC, whole seconds. */
  target: string;
  rowsHit: number;
  /** The input of recoverToPointInTime, as typed into the Temporal UI. */
  input: RecoveryInput;
  /** A workflow id for the recovery, suggested to the UI and the CLI alike. */
  workflowId: string;
}

function progress(line: string): void {
  process.stderr.write(`[lifeboat dev-incident] ${line}\n`);
}

export async function run(opts: { stateDir: string; json?: boolean }): Promise<number> {
  const state = path.resolve(opts.stateDir);
  const sandbox = runningSandbox(state);
  const copy = await promotedCopy(state);
  if (copy) {
    throw new LifeboatError(
      'DATA_DIR_NOT_EMPTY',
      `the sandbox in ${state} has been recovered already: ${copy.dataDir} holds the copy workflow ${copy.marker.workflowId} promoted`,
      {
        hints: [
          'pgbouncer sends the application to that copy, and a second recovery would refuse to restore over it',
          `to play the incident again, start over: stop lifeboat dev (Ctrl-C), mv ${state} ${state}.old, then start lifeboat dev again`,
        ],
      },
    );
  }
  const primary = await connect(
    { port: sandbox.pgPort, user: 'postgres' },
    `the sandbox primary (127.0.0.1:${sandbox.pgPort})`,
  );
  let report: IncidentReport;
  try {
    const { rows } = await primary.query<{ pending: string }>(
      `select count(*) as pending from orders where status = 'pending'`,
    );
    if (Number(rows[0]?.pending) === 0) {
      throw new LifeboatError(
        'SQL_FAILED',
        'no order is pending: the incident has been played already, the UPDATE would hit no row',
        {
          hints: [
            'recover to the target the earlier lifeboat dev-incident printed; it is still the one',
            `or start over: stop lifeboat dev (Ctrl-C), mv ${state} ${state}.old, then start lifeboat dev again`,
          ],
        },
      );
    }
    progress('archiving the WAL written so far (pg_switch_wal, then waiting for pg_stat_archiver)');
    await archiveWal(primary, state);
    // The next whole second: after everything so far (the base backup
    // included), easy to type, and the incident comes GAP_MS later.
    const now = (await primary.query<{ now: Date }>('select clock_timestamp() as now')).rows[0]!.now;
    const target = new Date(Math.floor(now.getTime() / 1000) * 1000 + 1000);
    const targetText = target.toISOString().replace('.000Z', 'Z');
    progress(`safe target time (the primary's clock): ${targetText}; the incident follows in a second`);
    await sleep(target.getTime() - now.getTime() + GAP_MS);
    const rowsHit = await playIncident(sandbox, state);
    progress(`${INCIDENT_SQL}: ${rowsHit} rows`);
    await refreshCache(sandbox);
    progress('archiving the WAL that holds the UPDATE');
    await archiveWal(primary, state);
    report = {
      target: targetText,
      rowsHit,
      input: { runbook: RUNBOOK, target: { time: targetText }, incident: INCIDENT, reason: REASON },
      workflowId: `recover-${RUNBOOK}-${targetText.replace(/[-:]/g, '')}`,
    };
  } finally {
    await primary.end().catch(() => undefined);
  }
  if (opts.json) printJson(report);
  else process.stdout.write(instructions(report, sandbox, cliPath()));
  return 0;
}

async function connect(cfg: ClientConfig, what: string): Promise<Client> {
  const client = new Client({ host: '127.0.0.1', database: DEMO_DATABASE, connectionTimeoutMillis: 10_000, ...cfg });
  try {
    await client.connect();
    return client;
  } catch (err) {
    throw new LifeboatError('PG_UNREACHABLE', `cannot connect to ${what}: ${errorMessage(err)}`, {
      hints: [
        'is lifeboat dev still running? Its terminal shows what went wrong',
        'start it again with npm start if it stopped',
      ],
      cause: err,
    });
  }
}

/** pg_switch_wal, then waits until the archiver reports that segment (or a later one) archived. */
async function archiveWal(db: Client, state: string): Promise<void> {
  const { rows } = await db.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
  const walfile = rows[0]!.walfile;
  const deadline = Date.now() + ARCHIVE_TIMEOUT_MS;
  for (;;) {
    const { rows: s } = await db.query<{ last_archived_wal: string | null; last_failed_wal: string | null }>(
      'select last_archived_wal, last_failed_wal from pg_stat_archiver',
    );
    const archived = s[0]?.last_archived_wal ?? null;
    // Same timeline: segment names sort in WAL order.
    if (archived !== null && archived >= walfile) return;
    if (Date.now() > deadline) {
      throw new LifeboatError(
        'TOOL_FAILED',
        `WAL segment ${walfile} was not archived within ${ARCHIVE_TIMEOUT_MS / 1000} s (last archived: ${archived ?? 'none'}, last failed: ${s[0]?.last_failed_wal ?? 'none'})`,
        {
          hints: [
            `archive_command errors are in ${path.join(state, 'pg', 'postgres.log')}`,
            'lifeboat check --runbook demo shows the archiver health',
          ],
        },
      );
    }
    await sleep(200);
  }
}

async function playIncident(sandbox: SandboxState, state: string): Promise<number> {
  const app = await connect(
    { port: sandbox.pgbouncerPort, user: 'app' },
    `pgbouncer (127.0.0.1:${sandbox.pgbouncerPort}) as app`,
  );
  try {
    return (await app.query(INCIDENT_SQL)).rowCount ?? 0;
  } catch (err) {
    // 25006: the writer gate of an earlier recovery made role app read-only.
    if ((err as { code?: string }).code === '25006') {
      throw new LifeboatError(
        'SQL_FAILED',
        `the UPDATE was refused: role app is read-only on the sandbox primary, fenced by an earlier recovery (${errorMessage(err)})`,
        {
          hints: [
            `reopen it by hand: psql -h 127.0.0.1 -p ${sandbox.pgPort} -U postgres ${DEMO_DATABASE} -c "alter role app reset default_transaction_read_only" -c "update system_gate set enabled = true"`,
            `or start over: stop lifeboat dev (Ctrl-C), mv ${state} ${state}.old, then start lifeboat dev again`,
          ],
          cause: err,
        },
      );
    }
    throw new LifeboatError('SQL_FAILED', `the UPDATE through pgbouncer failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    await app.end().catch(() => undefined);
  }
}

/** The application reads its orders again and caches them: now the cache holds canceled orders too, for invalidate-caches to clear. */
async function refreshCache(sandbox: SandboxState): Promise<void> {
  const app = await connect(
    { port: sandbox.pgbouncerPort, user: 'app' },
    `pgbouncer (127.0.0.1:${sandbox.pgbouncerPort}) as app`,
  );
  try {
    await cacheOrders(`redis://127.0.0.1:${sandbox.redisPort}`, app);
  } catch (err) {
    progress(`the Redis cache was not refreshed (the recovery does not need it): ${errorMessage(err)}`);
  } finally {
    await app.end().catch(() => undefined);
  }
}

/** What the operator reads: the target, then the recovery from the Temporal UI, or from the CLI, then the check. */
export function instructions(r: IncidentReport, s: SandboxState, lifeboat: string): string {
  const ui = `http://127.0.0.1:${s.uiPort}`;
  const decide = (step: string, by: string) => JSON.stringify({ step, decision: 'approve', by });
  const id = r.workflowId;
  return `
The incident: ${r.rowsHit} pending orders canceled by
  ${INCIDENT_SQL}
run through pgbouncer (127.0.0.1:${s.pgbouncerPort}) as app. The WAL holding it is archived.

Safe target, one second before it (the primary's clock):
  ${r.target}

Recover from the Temporal UI, ${ui}
  1. Workflows, Start Workflow, and fill in:
       Workflow ID     ${id}   (any id not used yet)
       Task Queue      ${TASK_QUEUE}
       Workflow Type   recoverToPointInTime
       Input (JSON)    ${JSON.stringify(r.input)}
  2. Open the run (Workflows, then its id) and its "${CHECKLIST_TAB.name}" tab: under "Current Details"
     the checklist says what the run waits for, who may decide and how. The page does not
     refresh itself: press R (or reload) for the latest. With the exports below,
     ${lifeboat} status ${id} prints a link straight to that tab.
  3. At each approval: More Actions, Send an Update, pick decide, and send this input
     (approvers: alice and bob); the UI shows the answer, accepted or why not:
       approve-fence     ${decide('approve-fence', 'alice')}
       approve-promote   ${decide('approve-promote', 'alice')}
                         then ${decide('approve-promote', 'bob')}   (two approvers)
       approve-resume    ${decide('approve-resume', 'alice')}

Or from the CLI, in another terminal:
  export LIFEBOAT_RUNBOOKS_DIR=${s.runbooksDir} TEMPORAL_ADDRESS=${s.temporalAddress} LIFEBOAT_UI_URL=${ui}
  ${lifeboat} recover --runbook ${RUNBOOK} --to-time ${r.target} --incident ${INCIDENT} --reason "${REASON}" --workflow-id ${id} --follow
  ${lifeboat} approve ${id} approve-fence --as alice
  ${lifeboat} approve ${id} approve-promote --as alice
  ${lifeboat} approve ${id} approve-promote --as bob
  ${lifeboat} approve ${id} approve-resume --as alice

Check through pgbouncer, the application's address:
  psql -h 127.0.0.1 -p ${s.pgbouncerPort} -U app ${DEMO_DATABASE} -c "select status, count(*) from orders group by 1"
Now the ${r.rowsHit} orders show as canceled; after the recovery they are pending again, served by
the promoted copy on port ${s.restorePort}, where pgbouncer then points.
`;
}
