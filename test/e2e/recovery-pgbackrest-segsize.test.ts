// A pgBackRest stanza of a cluster not made with PostgreSQL's default WAL
// segment size (initdb --wal-segsize=1: 1 MiB segments, 4096 to a log id
// instead of 256). pgBackRest's info does not give the size; Lifeboat reads
// it from an archived segment (src/engine/pgbackrest/segments.ts), and every
// computation on segment names takes it from there. With 16 MiB assumed, the
// names after the first log id (4 GiB of WAL, a few hours of a busy cluster)
// did not continue the archive's line: it ended at 000000010000000000000FFF,
// and preflight refused every target past it as TARGET_UNREACHABLE ("its last
// record starts at 0/FFFFF810"). The cluster is put near that boundary with
// pg_resetwal -l before its first start, instead of writing 4 GiB. One posix
// stanza on a real PostgreSQL 15 primary and pgBackRest 2.45: a full backup
// before the boundary, some 8 MiB of writes across it, batch A (LSN a), more
// writes, batch B; archived. Then:
//   - the engine reads the size: 1 MiB, as the primary's wal_segment_size;
//   - preflight to LSN a passes, the archive read without a gap;
//   - a drill's target is drawn up to batch B's commit, past the boundary;
//   - preflight refuses an LSN 4 MiB past the archive's end with
//     TARGET_UNREACHABLE, nothing started;
//   - a recovery to LSN a on the dev Temporal server pauses with exactly the
//     rows at a.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preflight } from '../../activities/recovery';
import { pickDrillTargetOnEngine } from '../../src/drill/engine-target';
import type { Runbook } from '../../src/runbook/schema';
import { formatLsn, parseLsn } from '../../src/wal/names';
import { activity, failureOf } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import {
  appSession,
  restoredSession,
  seedOrders,
  startPgBackRestRunbook,
  startRecovery,
  ORDERS,
  type Order,
  type PgBackRestRunbook,
} from '../harness/pgbackrest-e2e';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

const MIB = 1024 * 1024;

let r: PgBackRestRunbook;
let runbook: Runbook;
let rowsA: Order[] = [];
let lsnA = '';
/** Where the archive ends: the end of the newest archived segment. */
let archiveEnd = 0n;

beforeAll(async () => {
  r = await startPgBackRestRunbook(cleanups, {
    name: 'brsegsize',
    stanza: 'seg1',
    wal: { segSizeMb: 1, start: '000000010000000000000FFB' },
  });
  runbook = await r.load();
  const pg = r.s.primary;
  await seedOrders(pg);
  await r.engine.takeBackup({ type: 'full' });
  const app = await appSession(cleanups, pg);
  const insert = (batch: string) =>
    app.query(
      `insert into orders (customer, status, amount) select '${batch}-' || g, 'pending', 10 from generate_series(1, 20) g`,
    );
  // About 8 MiB of WAL: across the end of log id 0 (segment 0FFF, LSN 0/FFFFFFFF).
  await pg.query(`create table ballast as select g, repeat('x', 1000) as pad from generate_series(1, 8000) g`);
  await insert('a');
  lsnA = (await app.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l')).rows[0]!.l;
  expect(parseLsn(lsnA)).toBeGreaterThan(0xffffffffn);
  rowsA = (await app.query<Order>(ORDERS)).rows;
  await pg.query(`create table ballast2 as select g, repeat('x', 1000) as pad from generate_series(1, 3000) g`);
  await insert('b');
  const last = await switchAndWaitArchived(pg);
  expect(last).toMatch(/^[0-9A-F]{24}$/);
  // The segment after the switched one is where the primary writes now: the archive ends at its start.
  const [row] = await pg.query<{ end: string }>(`select pg_current_wal_lsn()::text as end`);
  archiveEnd = parseLsn(row!.end);
  expect(archiveEnd - parseLsn(lsnA)).toBeGreaterThan(2n * BigInt(MIB));
});

describe('a pgBackRest stanza of a cluster with 1 MiB WAL segments', () => {
  it('reads the segment size from the archive: the primary says the same', async () => {
    const [row] = await r.s.primary.query<{ size: string }>(
      `select setting as size from pg_settings where name = 'wal_segment_size'`,
    );
    expect(Number(row!.size)).toBe(MIB);
    expect(await r.engine.walSegmentSize()).toBe(MIB);
    // The archive holds segments on both sides of the log id boundary.
    const { files } = await r.engine.walFiles();
    expect(files).toContain('000000010000000000000FFF');
    expect(files).toContain('000000010000000100000000');
  });

  it('passes preflight to an LSN past the log id boundary: the archive read without a gap', async () => {
    const { result } = await activity(preflight, {
      runbook: r.name,
      target: { lsn: lsnA },
      mode: 'side-by-side',
      dryRun: false,
    });
    expect(result.walFrom <= '000000010000000000000FFF').toBe(true);
    expect(result.walTo! >= '000000010000000100000000').toBe(true);
  });

  it("draws a drill's target up to the newest commit, past the boundary", async () => {
    const picked = await pickDrillTargetOnEngine(runbook);
    // Batch B's commit, in a segment of log id 1 (with 16 MiB assumed the line ended at 0FFF, before batch A).
    expect(picked.why).toMatch(/newest archived commit \(\S+, in 0000000100000001[0-9A-F]{8}\)/);
  });

  it('refuses in preflight an LSN past the end of the archive, nothing started', async () => {
    const past = formatLsn(archiveEnd + 4n * BigInt(MIB));
    const f = await failureOf(
      activity(preflight, { runbook: r.name, target: { lsn: past }, mode: 'side-by-side', dryRun: false }),
    );
    expect(f.type, f.message).toBe('TARGET_UNREACHABLE');
    expect(f.message).toMatch(new RegExp(`^LSN ${past} is past the end of the WAL archive of cluster `));
    expect(existsSync(runbook.restore.dataDir)).toBe(false);
  });

  it('recovers to an LSN with exactly the rows at that LSN', async () => {
    const run = await startRecovery(cleanups, r, {
      target: { lsn: lsnA },
      incident: 'INC-SEGSIZE',
      reason: 'bad batch b',
    });
    await run.waitStep('approve-fence', 'awaiting-approval');
    await run.approve('approve-fence', 'alice');
    const paused = await run.waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    const session: Cleanups = [];
    try {
      const c = await restoredSession(session, runbook, 'app');
      expect((await c.query<Order>(ORDERS)).rows).toEqual(rowsA);
    } finally {
      await runCleanups(session);
    }
    await run.wf.terminate('test: the copy at LSN a is checked');
    await stopRestoredCopy(runbook);
  });
});
