// Lifeboat's own repository for a cluster not made with PostgreSQL's default
// WAL segment size (initdb --wal-segsize=1: 1 MiB segments, 4096 to a log id
// instead of 256), across a log id boundary: archive-push takes the size from
// the segment's length, the base backup records it, and the chain, the reach
// check and replay number segments with it. The cluster is put just before
// the boundary with pg_resetwal -l before its first start, instead of writing
// 4 GiB. A real PostgreSQL 15 primary archiving into a file:// repository:
// a base backup before the boundary, some 8 MiB of writes across it, batch A
// (LSN a), more writes, batch B; archived. Then:
//   - the backup records 1 MiB; `lifeboat check` finds the chain whole;
//   - a recovery to LSN a on the dev Temporal server pauses with exactly the
//     rows at a.
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog';
import { openRepository } from '../../src/repository';
import { parseLsn } from '../../src/wal/names';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { switchAndWaitArchived } from '../harness/postgres';
import { backedUpCluster, recoverUntilPaused, type BackedUpCluster } from '../harness/recovery-cluster';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));
const lifeboat = cliRunner(() => process.env);

type Order = { id: number; customer: string };
const ORDERS = 'select id, customer from orders order by id';
const MIB = 1024 * 1024;

let c: BackedUpCluster;
let rowsA: Order[] = [];
let lsnA = '';

beforeAll(async () => {
  c = await backedUpCluster('segsz', cleanups, 'file', {
    initdb: ['--wal-segsize=1'],
    walStart: '000000010000000000000FFB',
  });
  const pg = c.tc.pg;
  const insert = (batch: string) =>
    pg.query(
      `insert into orders (customer, status, amount) select '${batch}-' || g, 'pending', 10 from generate_series(1, 20) g`,
    );
  // About 8 MiB of WAL: across the end of log id 0 (segment 0FFF, LSN 0/FFFFFFFF).
  await pg.query(`create table ballast as select g, repeat('x', 1000) as pad from generate_series(1, 8000) g`);
  await insert('a');
  lsnA = (await pg.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l'))[0]!.l;
  expect(parseLsn(lsnA)).toBeGreaterThan(0xffffffffn);
  rowsA = await pg.query<Order>(ORDERS);
  await pg.query(`create table ballast2 as select g, repeat('x', 1000) as pad from generate_series(1, 3000) g`);
  await insert('b');
  await switchAndWaitArchived(pg);
});

describe("Lifeboat's own repository for a cluster with 1 MiB WAL segments", () => {
  it('records the size in the backup, and lifeboat check finds the chain whole across the log id boundary', async () => {
    const repo = await openRepository(c.tc.repoUrl, c.runbook.repository);
    const [entry] = await readCatalog(repo, c.name);
    expect(entry && 'meta' in entry ? entry.meta.walSegmentSize : entry).toBe(MIB);
    const out = await lifeboat('check', '--runbook', c.name, '--json');
    const report = JSON.parse(out.stdout) as { healthy: boolean; problems: { kind: string; message: string }[] };
    expect(report.problems, out.stderr).toEqual([]);
    expect([out.code, report.healthy]).toEqual([0, true]);
  });

  it('recovers to an LSN past the boundary with exactly the rows at that LSN', async () => {
    const paused = await recoverUntilPaused(c, cleanups, { target: { lsn: lsnA } });
    expect(paused.replay?.paused).toBe(true);
    const copy = new Client({ host: c.runbook.restore.address, port: c.runbook.restore.port, user: 'postgres' });
    await copy.connect();
    try {
      expect((await copy.query<Order>(ORDERS)).rows).toEqual(rowsA);
    } finally {
      await copy.end();
    }
  });
});
