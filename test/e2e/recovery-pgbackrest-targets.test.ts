// recoverToPointInTime on a pgBackRest stanza (issue 18) to the targets the
// restore point and time tests do not reach: an LSN, a retarget to an
// earlier LSN, and `latest`. One posix stanza on a real PostgreSQL 15 primary
// and pgBackRest 2.45 for every case: a full backup, then the application
// role inserts batch A (LSN a), batch B (LSN b), cancels every pending order
// and inserts batch C; the segment holding it all is switched and held until
// archived. The workflow on the dev Temporal server, approvals through the
// decide update:
//   - to LSN b: the paused copy holds exactly the rows at b;
//   - the same run retargeted (the retarget signal) to LSN a, which replay
//     cannot reach going forward: restore-base-backup runs again, pgBackRest
//     restores with --delta over the run's own copy (engine.delta: true; its
//     log, nothing moved aside), and the copy pauses with exactly the rows at a;
//   - a second runbook on the stanza to `latest`: the copy pauses at the end
//     of the archive with every committed row.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecoveryStatus, StepRecord } from '../../src/recovery/contract';
import { retargetSignal, statusQuery } from '../../src/recovery/messages';
import type { Runbook } from '../../src/runbook/schema';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import {
  appSession,
  restoredSession,
  seedOrders,
  startPgBackRestRunbook,
  startRecovery,
  type PgBackRestRunbook,
  type RecoveryRun,
} from '../harness/pgbackrest-e2e';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

interface Order {
  id: number;
  customer: string;
  status: string;
}
const ORDERS = 'select id, customer, status from orders order by id';

let r: PgBackRestRunbook;
let runbook: Runbook;
let backupId: string;
/** The orders at LSN a, at LSN b, and at the end (all archived). */
const rows: { a: Order[]; b: Order[]; all: Order[] } = { a: [], b: [], all: [] };
const lsn = { a: '', b: '' };

/** The orders on a runbook's restored copy, as the application (a session of its own, ended before returning). */
async function ordersOnCopy(rb: Runbook): Promise<Order[]> {
  const session: Cleanups = [];
  try {
    const c = await restoredSession(session, rb, 'app');
    return (await c.query<Order>(ORDERS)).rows;
  } finally {
    await runCleanups(session);
  }
}

/** pgBackRest's "restore command begin" lines in its log file for the stanza (log-level-file=info, set below). */
function restoreCommands(): string[] {
  const file = path.join(r.s.root, `${r.s.stanza}-restore.log`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('restore command begin'));
}

/** How many times replay-wal ran (a retarget to an earlier point runs it again). */
const replayRuns = (st: RecoveryStatus) => st.steps.find((x) => x.id === 'replay-wal')?.runs ?? 0;

/**
 * Held until approve-promote is asked again after replay-wal ran more than
 * `before` times (the pause reached after a retarget, not the one before); a
 * failed step ends the wait with its error.
 */
async function pausedAgain(run: RecoveryRun, before: number): Promise<RecoveryStatus> {
  const st = await waitFor(
    'the retargeted copy to pause again',
    async (): Promise<{ failed: StepRecord } | { s: RecoveryStatus } | undefined> => {
      const s = await run.wf.query(statusQuery);
      const failed = s.steps.find((x) => x.state === 'failed');
      if (failed) return { failed };
      const promote = s.steps.find((x) => x.id === 'approve-promote')?.state;
      return replayRuns(s) > before && promote === 'awaiting-approval' ? { s } : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 250 },
  );
  if ('failed' in st)
    throw new Error(`${st.failed.id} failed after the retarget: ${st.failed.error?.type} ${st.failed.error?.message}`);
  return st.s;
}

beforeAll(async () => {
  r = await startPgBackRestRunbook(cleanups, { name: 'brtargets', stanza: 'tgt', engine: 'delta: true' });
  runbook = await r.load();
  // pgBackRest's own log at info, so a restore's options can be read back (the harness keeps it off).
  writeFileSync(r.s.config, readFileSync(r.s.config, 'utf8').replace('log-level-file=off', 'log-level-file=info'));

  const pg = r.s.primary;
  await seedOrders(pg);
  backupId = (await r.engine.takeBackup({ type: 'full' })).backupId;
  // The fence ends the application's sessions on the old primary.
  const app = await appSession(cleanups, pg);
  const insert = (batch: string) =>
    app.query(
      `insert into orders (customer, status, amount) select '${batch}-' || g, 'pending', 10 from generate_series(1, 20) g`,
    );
  // Each LSN read after its batch committed: replay to it holds that batch, and not the next one.
  const at = async () => (await app.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l')).rows[0]!.l;
  await insert('a');
  lsn.a = await at();
  rows.a = (await app.query<Order>(ORDERS)).rows;
  await insert('b');
  lsn.b = await at();
  rows.b = (await app.query<Order>(ORDERS)).rows;
  await app.query(`update orders set status = 'canceled' where status = 'pending'`);
  await insert('c');
  rows.all = (await app.query<Order>(ORDERS)).rows;
  await switchAndWaitArchived(pg);
  // Three different sets of rows: a copy at one target cannot pass for another.
  expect(rows.a.length).toBeLessThan(rows.b.length);
  expect(rows.b.length).toBeLessThan(rows.all.length);
  // At the end only batch C is pending: the update canceled A and B.
  expect(rows.all.filter((o) => o.status === 'pending').map((o) => o.customer)).toEqual(
    Array.from({ length: 20 }, (_, i) => `c-${i + 1}`),
  );
});

describe('recoverToPointInTime on a pgBackRest stanza: LSN, retarget, latest', () => {
  let run: RecoveryRun;

  it('pauses at an LSN target with exactly the rows at that LSN', async () => {
    run = await startRecovery(cleanups, r, {
      target: { lsn: lsn.b },
      incident: 'INC-18-LSN',
      reason: 'bad UPDATE on orders',
    });
    const fence = await run.waitStep('approve-fence', 'awaiting-approval');
    expect(fence.steps.find((x) => x.id === 'preflight')?.summary).toMatch(new RegExp(`^backup ${backupId}, `));
    await run.approve('approve-fence', 'alice');
    const paused = await run.waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(`recovery_target_lsn = '${lsn.b}'`);
    expect(await ordersOnCopy(runbook)).toEqual(rows.b);
    // The first restore was into an empty directory: a plain one, no delta there.
    expect(restoreCommands()).toHaveLength(1);
    expect(restoreCommands()[0]).not.toContain(' --delta ');
  });

  it('retargeted to an earlier LSN, restores again with --delta over its own copy and pauses with the rows there', async () => {
    const before = replayRuns(await run.wf.query(statusQuery));
    expect(before).toBeGreaterThan(0);
    const restoresBefore = restoreCommands().length;
    await run.wf.signal(retargetSignal, { by: 'alice', target: { lsn: lsn.a }, comment: 'before batch b' });
    const paused = await pausedAgain(run, before);
    expect(paused.replay?.paused).toBe(true);
    expect(paused.decisions.some((d) => d.decision === 'retarget' && d.by === 'alice')).toBe(true);
    expect(await ordersOnCopy(runbook)).toEqual(rows.a);
    // pgBackRest restored once more, with --delta, into the run's own directory; nothing was moved aside beside it.
    const commands = restoreCommands();
    expect(commands).toHaveLength(restoresBefore + 1);
    expect(commands.at(-1)).toContain(' --delta ');
    expect(commands.at(-1)).toContain(`--pg1-path=${runbook.restore.dataDir} `);
    // The target is Lifeboat's recovery block's, written again for the new target.
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(`recovery_target_lsn = '${lsn.a}'`);
    expect(autoConf).not.toContain(`recovery_target_lsn = '${lsn.b}'`);
    const dir = runbook.restore.dataDir;
    // Moved aside: `<dataDir>.lifeboat-<time>`, `.lifeboat-moved-<time>`... (not the server log beside it).
    const aside = readdirSync(path.dirname(dir)).filter((e) => /\.lifeboat-([a-z]+-)?\d{8}T\d{6}Z/.test(e));
    expect(aside).toEqual([]);
    await run.wf.terminate('test: the retargeted copy is checked');
    await stopRestoredCopy(runbook);
  });

  it('to latest, pauses at the end of the archive with every committed row', async () => {
    const latest = await r.another({ name: 'brtargetslatest' });
    const { waitStep, approve, wf } = await startRecovery(
      cleanups,
      { name: latest.name, host: r.host },
      {
        target: { latest: true },
        incident: 'INC-18-LATEST',
        reason: 'replica lost',
      },
    );
    await waitStep('approve-fence', 'awaiting-approval');
    await approve('approve-fence', 'alice');
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    expect(await ordersOnCopy(latest)).toEqual(rows.all);
    await wf.terminate('test: the copy at the end of the archive is checked');
    await stopRestoredCopy(latest);
  });
});
