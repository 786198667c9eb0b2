// A DBA's cluster with a tablespace outside its data directory, on Lifeboat's
// own file:// repository. pg_basebackup's plain format writes a tablespace at
// its own path, which on the primary's host is the primary's: the backup
// failed ("directory exists but is not empty") before Lifeboat mapped it, and
// a copy restored from links to that path would have used the primary's
// files. Now the backup maps each tablespace into its scratch directory and
// stores it inside the data directory (pg_tblspc/<oid> a directory); the
// copy reads its own. A real PostgreSQL 15 primary: tablespace `fast` in a
// directory of its own with a table in it (after the harness's first backup),
// then a second backup, then rows in the
// table, a restore point, more rows. Then:
//   - the backup records the tablespace and stores its files;
//   - a recovery to the restore point pauses with exactly the rows at it in
//     the tablespace's table, the copy's tablespace inside its own data
//     directory (pg_tablespace_location is pg_tblspc/<oid>), the restore's
//     summary says so, and the primary's tablespace still serves the primary;
//   - a tablespace made on the primary after the backup is named in
//     preflight's warnings (replay would make it at the primary's location)
//     and in lifeboat check, with the backup to take.
import { lstatSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preflight } from '../../activities/recovery';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import { activity } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { switchAndWaitArchived } from '../harness/postgres';
import { backedUpCluster, recoverUntilPaused, type BackedUpCluster } from '../harness/recovery-cluster';
import { fastTablespace, LEDGER_FAST_ROWS as ROWS, type LedgerRow as Row } from '../harness/tablespace';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

let c: BackedUpCluster;
let meta: BackupMeta;
let location = '';
let oid = '';
let rowsAtPoint: Row[] = [];
const lifeboat = cliRunner(() => process.env);

/** What `lifeboat check --json` finds about tablespaces. */
async function tablespaceFindings(): Promise<{ kind: string; message: string; hints: string[] }[]> {
  const out = await lifeboat('check', '--runbook', c.name, '--json');
  const report = JSON.parse(out.stdout) as { problems: { kind: string; message: string; hints: string[] }[] };
  return report.problems.filter((p) => p.kind === 'tablespace-not-in-backup');
}

beforeAll(async () => {
  c = await backedUpCluster('tblspc', cleanups);
  const pg = c.tc.pg;
  ({ location, oid } = await fastTablespace(cleanups, pg));
  meta = await takeBaseBackup({ runbook: c.runbook });
  await pg.query(`insert into ledger_fast select g, 'after-backup-' || g from generate_series(51, 80) g`);
  await pg.query(`select pg_create_restore_point('tblspc-point')`);
  rowsAtPoint = await pg.query<Row>(ROWS);
  await pg.query(`update ledger_fast set note = 'damaged'`);
  await switchAndWaitArchived(pg);
});

describe('a cluster with a tablespace outside its data directory', () => {
  it('is backed up with the tablespace stored inside the data directory; lifeboat check finds it held', async () => {
    expect(meta.tablespaces).toEqual([{ oid, name: 'fast', location }]);
    expect(await tablespaceFindings()).toEqual([]);
  });

  it('recovers to a restore point with exactly its rows, the copy on its own tablespace files', async () => {
    const paused = await recoverUntilPaused(c, cleanups, { target: { name: 'tblspc-point' }, backupId: meta.backupId });
    expect(paused.replay?.paused).toBe(true);
    expect(paused.steps.find((x) => x.id === 'restore-base-backup')?.summary).toContain(
      `tablespace fast (at ${location} on the primary) is inside the copy's data directory: pg_tblspc/${oid}`,
    );
    // A directory in the copy, not a link to the primary's location.
    expect(lstatSync(path.join(c.runbook.restore.dataDir, 'pg_tblspc', oid)).isDirectory()).toBe(true);
    const copy = new Client({ host: c.runbook.restore.address, port: c.runbook.restore.port, user: 'postgres' });
    await copy.connect();
    try {
      expect((await copy.query<Row>(ROWS)).rows).toEqual(rowsAtPoint);
      const [loc] = (await copy.query<{ l: string }>(`select pg_tablespace_location(${oid}) as l`)).rows;
      expect(loc?.l).toBe(`pg_tblspc/${oid}`);
    } finally {
      await copy.end();
    }
    // The primary still reads and writes its own tablespace.
    const pg = c.tc.pg;
    await pg.query(`insert into ledger_fast values (81, 'after-recovery')`);
    expect((await pg.query<Row>(ROWS)).map((r) => r.note).slice(-2)).toEqual(['damaged', 'after-recovery']);
    const [ploc] = await pg.query<{ l: string }>(`select pg_tablespace_location(${oid}) as l`);
    expect(ploc?.l).toBe(location);
  });

  it("warns in preflight of a tablespace on the primary that the backup does not hold, not of the backup's own", async () => {
    const late = path.join(path.dirname(location), 'late');
    mkdirSync(late);
    chownToOsUser(late, 'postgres');
    await c.tc.pg.query(`create tablespace late location '${late}'`);
    const { result } = await activity(preflight, {
      runbook: c.name,
      target: { name: 'tblspc-point' },
      backupId: meta.backupId,
      mode: 'side-by-side',
      dryRun: false,
    });
    // lifeboat check says so before any night: the newest backup does not hold it, and which backup to take.
    const [finding, ...more] = await tablespaceFindings();
    expect(more).toEqual([]);
    expect(finding?.message).toMatch(
      new RegExp(
        `^tablespace late \\(oid \\d+, at ${late}\\) is on the primary but not in the newest backup ${meta.backupId}$`,
      ),
    );
    expect(finding?.hints[0]).toBe(`take a backup, which holds it: lifeboat backup --runbook ${c.name}`);
    const about = result.warnings.filter((w) => w.startsWith('tablespace '));
    expect(about).toHaveLength(1);
    expect(about[0]).toMatch(
      new RegExp(`^tablespace late \\(oid \\d+, at ${late}\\) is on the primary but not in backup ${meta.backupId}: `),
    );
  });
});
