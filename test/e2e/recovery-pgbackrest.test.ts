// The bad UPDATE recovered on a pgBackRest stanza (issue 18): a real
// PostgreSQL 15 primary archiving through `pgbackrest archive-push` into a
// posix repository (test/harness/pgbackrest.ts), a base backup taken by
// pgBackRest, a restore point, then an application role (no superuser)
// cancels every pending order. recoverToPointInTime on the dev Temporal
// server, approvals through the decide update: preflight through the engine,
// pgbackrest restore inside Lifeboat's claim and marker, replay with the
// restore_command pgBackRest wrote, promotion. The promoted copy holds the
// orders as they were at the restore point, and the evidence names the engine.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Evidence } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { MARKER_FILE } from '../../src/restore/marker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import {
  appSession,
  restoredSession,
  seedOrders,
  startPgBackRestRunbook,
  startRecovery,
} from '../harness/pgbackrest-e2e';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

describe('recoverToPointInTime on a pgBackRest stanza', () => {
  it('brings the orders back to the restore point, promotes, and the evidence names the engine', async () => {
    // Lifeboat's own repository holds only the audit log and the evidence; the backups and WAL are pgBackRest's.
    const r = await startPgBackRestRunbook(cleanups, { name: 'brrecover', stanza: 'rec' });
    const { s, name, engine } = r;
    const runbook = await r.load();

    const pg = s.primary;
    await seedOrders(pg);
    const backup = await engine.takeBackup({ type: 'full' });
    // After the backup, as the application: more orders, then the restore point before the incident.
    // The fence ends the application's sessions on the old primary.
    const app = await appSession(cleanups, pg);
    await app.query(
      `insert into orders (customer, status, amount) select 'late-' || g, 'pending', 10 from generate_series(1, 40) g`,
    );
    const before = (await app.query<{ id: number; status: string }>('select id, status from orders order by id')).rows;
    expect(before.filter((o) => o.status === 'pending').length).toBeGreaterThan(40);
    await pg.query(`select pg_create_restore_point('before-cancel')`);
    // The incident, by the application role.
    await app.query(`update orders set status = 'canceled' where status = 'pending'`);
    await switchAndWaitArchived(pg);

    const { wf, waitStep, approve } = await startRecovery(cleanups, r, {
      target: { name: 'before-cancel' },
      incident: 'INC-18',
      reason: 'bad UPDATE on orders',
    });

    const fence = await waitStep('approve-fence', 'awaiting-approval');
    // Preflight chose pgBackRest's backup and said what it could not check on this engine.
    expect(fence.steps.find((x) => x.id === 'preflight')?.summary).toMatch(
      new RegExp(`^backup ${backup.backupId}, \\d+ WAL segments from ${backup.startWal}`),
    );
    await approve('approve-fence', 'alice');
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    // The copy is Lifeboat's (its marker) and replays through pgBackRest's archive-get.
    const marker = JSON.parse(readFileSync(path.join(runbook.restore.dataDir, MARKER_FILE), 'utf8')) as {
      backupId: string;
      state: string;
    };
    expect(marker).toMatchObject({ backupId: backup.backupId, state: 'replaying' });
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    const block = autoConf.slice(autoConf.indexOf('# lifeboat recovery begin'));
    expect(block).toMatch(
      new RegExp(`^restore_command = 'pgbackrest .*--stanza=${s.stanza} archive-get %f "%p"'$`, 'm'),
    );
    expect(block).toContain(`recovery_target_name = 'before-cancel'`);
    await approve('approve-promote', 'alice');
    await waitStep('approve-resume', 'awaiting-approval');
    await approve('approve-resume', 'bob');
    const evidence = (await wf.result()) as Evidence;

    // The promoted copy, as the application: exactly the rows at the restore point, and it takes writes.
    const restored = await restoredSession(cleanups, runbook, 'app');
    expect(
      (await restored.query<{ id: number; status: string }>('select id, status from orders order by id')).rows,
    ).toEqual(before);
    await restored.query(`insert into orders (customer, status, amount) values ('after-recovery', 'paid', 5)`);
    expect((await restored.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).toBe(false);
    // The new primary archives into the stanza on its new timeline: held until its archiver pushed the switched segment.
    const admin = await restoredSession(cleanups, runbook, 'postgres');
    // The segment the switch completed (pg_switch_wal returns an LSN within it), named on timeline 2.
    const { f: segment } = (await admin.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f')).rows[0]!;
    expect(segment.startsWith('00000002')).toBe(true);
    await waitFor(
      `the promoted copy to archive ${segment}`,
      async () => {
        const r = await admin.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
        const last = r.rows[0]!.last;
        return last !== null && /^[0-9A-F]{24}$/.test(last) && last >= segment ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const info = JSON.parse(await s.run(['info', '--output=json'])) as Array<{ archive: Array<{ max: string }> }>;
    expect(info[0]!.archive[0]!.max >= segment).toBe(true);

    expect(evidence).toMatchObject({
      kind: 'recovery',
      engine: 'pgbackrest',
      runbook: name,
      backupId: backup.backupId,
      target: { name: 'before-cancel' },
      validationStatus: 'passed',
    });
    // Every step done but the caches, which this runbook has none of.
    expect(evidence.steps.filter((x) => x.state !== 'done').map((x) => `${x.id}:${x.state}`)).toEqual([
      'invalidate-caches:skipped',
    ]);
    expect(evidence.primary?.history).toMatch(/^00000002\.history not pushed: the WAL archive is pgBackRest's/);
    expect(evidence.notes).toContain(
      "preflight on pgBackRest stanza rec skipped: the role's privileges in the backup (pgBackRest records no privilege record; lifeboat grants prints what the role needs)",
    );
    // Stored in Lifeboat's own repository, as for every engine.
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    expect(JSON.parse((await repo.get(keys.evidence(name, evidence.runId)))!.body.toString())).toEqual(evidence);
    await restored.end();
    await admin.end();
    await stopRestoredCopy(runbook);
  });
});
