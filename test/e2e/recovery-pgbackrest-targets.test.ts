// recoverToPointInTime on a pgBackRest stanza (issue 18) to the targets the
// restore point and time tests do not reach: an LSN, a retarget to an
// earlier LSN, `latest` and a transaction id, and the targets preflight
// refuses because the stanza's archive cannot reach them. One posix stanza on
// a real PostgreSQL 15 primary and pgBackRest 2.45 for every case: a full
// backup, then the application role inserts batch A (LSN a), batch B (LSN b,
// in transaction x), a restore point before-c is made, every pending order
// is canceled and batch C inserted; the segment holding it all is switched
// and held until archived. The workflow on the dev Temporal server,
// approvals through the decide update:
//   - to LSN b: the paused copy holds exactly the rows at b;
//   - the same run retargeted (the retarget signal) to LSN a, which replay
//     cannot reach going forward: restore-base-backup runs again, pgBackRest
//     restores with --delta over the run's own copy (engine.delta: true; its
//     log, nothing moved aside), and the copy pauses with exactly the rows at a;
//   - a second runbook on the stanza to `latest`: the copy pauses at the end
//     of the archive with every committed row;
//   - a third to transaction x: the copy pauses with exactly the rows at b;
//   - a fourth to a time after the archive's newest commit, a misspelt
//     restore point and an LSN past the archive's end: each run ends in
//     preflight with TARGET_UNREACHABLE, after the primary switched WAL and
//     pgBackRest listed it, nothing fenced, restored or started.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { WorkflowFailedError } from '@temporalio/client';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retargetSignal, statusQuery } from '../../src/recovery/messages';
import type { Runbook } from '../../src/runbook/schema';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import {
  appSession,
  seedOrders,
  startPgBackRestRunbook,
  startRecovery,
  ORDERS,
  type Order,
  pausedAgain,
  replayRuns,
  rowsOnCopy,
  type PgBackRestRunbook,
  type RecoveryRun,
} from '../harness/pgbackrest-e2e';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

let r: PgBackRestRunbook;
let runbook: Runbook;
let backupId: string;
/** The orders at LSN a, at LSN b, and at the end (all archived). */
const rows: { a: Order[]; b: Order[]; all: Order[] } = { a: [], b: [], all: [] };
const lsn = { a: '', b: '' };
/** The transaction that inserted batch B. */
let xidB = '';

/** The orders on a runbook's restored copy, as the application. */
const ordersOnCopy = (rb: Runbook) => rowsOnCopy<Order>(rb, ORDERS, 'app');

/** pgBackRest's "restore command begin" lines in its log file for the stanza (log-level-file=info, set below). */
function restoreCommands(): string[] {
  const file = path.join(r.s.root, `${r.s.stanza}-restore.log`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('restore command begin'));
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
  await app.query('begin');
  await insert('b');
  xidB = (await app.query<{ x: string }>('select txid_current()::text as x')).rows[0]!.x;
  await app.query('commit');
  lsn.b = await at();
  rows.b = (await app.query<Order>(ORDERS)).rows;
  await pg.query(`select pg_create_restore_point('before-c')`);
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

describe('recoverToPointInTime on a pgBackRest stanza: LSN, retarget, latest, transaction id, unreachable targets', () => {
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

  it('to a transaction id, pauses with exactly the rows after that transaction committed', async () => {
    const byXid = await r.another({ name: 'brtargetsxid' });
    const { waitStep, approve, wf } = await startRecovery(
      cleanups,
      { name: byXid.name, host: r.host },
      { target: { xid: xidB }, incident: 'INC-18-XID', reason: 'bad UPDATE after batch b' },
    );
    await waitStep('approve-fence', 'awaiting-approval');
    await approve('approve-fence', 'alice');
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    const autoConf = readFileSync(path.join(byXid.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toContain(`recovery_target_xid = '${xidB}'`);
    expect(await ordersOnCopy(byXid)).toEqual(rows.b);
    await wf.terminate('test: the copy at the transaction is checked');
    await stopRestoredCopy(byXid);
  });

  it('ends in preflight with TARGET_UNREACHABLE on a time, a restore point and an LSN the archive cannot reach, nothing touched', async () => {
    const refused = await r.another({ name: 'brtargetsrefused' });
    const past = new Date(Date.now() + 24 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const cases = [
      {
        target: { time: past },
        says: new RegExp(`^time ${past} is after the newest commit in the WAL archive of cluster `),
        hint: '--to-latest',
      },
      {
        target: { name: 'Before-C' },
        says: /^restore point "Before-C" is not in the WAL archive of cluster .*it holds 1 restore point, the newest "before-c"/,
        hint: `--to-name 'before-c'`,
      },
      { target: { lsn: 'FF/0' }, says: /^LSN FF\/0 is past the end of the WAL archive of cluster /, hint: '--to-lsn ' },
    ];
    for (const c of cases) {
      const run = await startRecovery(
        cleanups,
        { name: refused.name, host: r.host },
        { target: c.target, incident: 'INC-18-UNREACHABLE', reason: 'a target past the archive' },
      );
      const err = await run.wf.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(c.target)).toBeInstanceOf(WorkflowFailedError);
      const st = await run.wf.query(statusQuery);
      expect(st.phase).toBe('failed');
      const error = st.steps[0]!.error!;
      expect(error.type, error.message).toBe('TARGET_UNREACHABLE');
      expect(error.message).toMatch(c.says);
      expect(error.hints.some((h) => h.includes(`lifeboat recover --runbook ${refused.name} ${c.hint}`))).toBe(true);
      // Refused only after the primary's newest WAL was switched and listed by pgBackRest.
      expect(error.hints.some((h) => /^the primary switched WAL and [0-9A-F]{24} was archived/.test(h))).toBe(true);
      expect(error.hints.at(-1)).toBe('nothing was touched: no gate, no traffic, no data directory');
      expect(st.steps.filter((x) => x.state !== 'pending').map((x) => x.id)).toEqual(['preflight']);
    }
    // Nothing restored for that runbook: its data directory was never made.
    expect(existsSync(refused.restore.dataDir)).toBe(false);
  });
});
