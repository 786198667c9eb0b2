// recoverToPointInTime on a pgBackRest stanza whose repository is S3 on a
// MinIO over TLS with a test CA (issue 18; test/harness/pgbackrest-s3.ts):
// the keys in pgBackRest's configuration file, the CA as
// repo1-storage-ca-file. A full backup, more orders, a time target, then an
// application role (no superuser) cancels every pending order. The workflow
// on the dev Temporal server, approvals through the decide update: preflight
// from pgbackrest info over S3, pgbackrest restore from the bucket, replay
// with the restore_command pgBackRest wrote (its WAL from the bucket),
// promotion. The promoted copy holds the orders as they were at the time;
// no key is in the evidence, the status or the copy's settings.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Evidence } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTlsMinio } from '../harness/minio-tls';
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

describe('recoverToPointInTime on a pgBackRest stanza on S3 over TLS', () => {
  it('brings the orders back to a time, from the bucket, and promotes', async () => {
    const minio = await startTlsMinio('recovery');
    cleanups.push(() => minio.stop());
    // Lifeboat's own repository holds only the audit log and the evidence; the backups and WAL are in the bucket.
    const r = await startPgBackRestRunbook(cleanups, { name: 'brrecovers3', stanza: 'recs3', s3: minio });
    const { s, name, engine } = r;
    const runbook = await r.load();

    const pg = s.primary;
    await seedOrders(pg);
    const backup = await engine.takeBackup({ type: 'full' });
    // The fence ends the application's sessions on the old primary.
    const app = await appSession(cleanups, pg);
    await app.query(
      `insert into orders (customer, status, amount) select 'late-' || g, 'pending', 10 from generate_series(1, 40) g`,
    );
    const before = (await app.query<{ id: number; status: string }>('select id, status from orders order by id')).rows;
    expect(before.filter((o) => o.status === 'pending').length).toBeGreaterThan(40);
    // The target: a millisecond after the server's clock read after those inserts committed (JavaScript keeps milliseconds)...
    const read = (await pg.query<{ t: Date }>('select clock_timestamp() as t'))[0]!.t;
    const target = new Date(read.getTime() + 1).toISOString();
    // ... and the incident only once the server's clock is past it, so its commit is after the target.
    await waitFor(
      'the server clock past the target',
      async () =>
        (await pg.query<{ past: boolean }>('select clock_timestamp() > $1::timestamptz as past', [target]))[0]!.past
          ? true
          : undefined,
      { intervalMs: 5 },
    );
    await app.query(`update orders set status = 'canceled' where status = 'pending'`);
    await switchAndWaitArchived(pg);

    const { wf, waitStep, approve } = await startRecovery(cleanups, r, {
      target: { time: target },
      incident: 'INC-18-S3',
      reason: 'bad UPDATE on orders',
    });

    const fence = await waitStep('approve-fence', 'awaiting-approval');
    expect(fence.steps.find((x) => x.id === 'preflight')?.summary).toMatch(new RegExp(`^backup ${backup.backupId}, `));
    await approve('approve-fence', 'alice');
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toMatch(
      new RegExp(
        `^restore_command = 'pgbackrest --config=${s.config} .*--stanza=${s.stanza} archive-get %f "%p"'$`,
        'm',
      ),
    );
    await approve('approve-promote', 'alice');
    await waitStep('approve-resume', 'awaiting-approval');
    await approve('approve-resume', 'bob');
    const evidence = (await wf.result()) as Evidence;
    const status = await wf.query(statusQuery);

    const restored = await restoredSession(cleanups, runbook, 'app');
    expect(
      (await restored.query<{ id: number; status: string }>('select id, status from orders order by id')).rows,
    ).toEqual(before);
    expect((await restored.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).toBe(false);

    expect(evidence).toMatchObject({
      kind: 'recovery',
      engine: 'pgbackrest',
      runbook: name,
      backupId: backup.backupId,
      target: { time: target },
      validationStatus: 'passed',
    });
    // The keys are pgBackRest's: in no workflow result, status or setting of the copy.
    for (const text of [JSON.stringify(evidence), JSON.stringify(status), autoConf]) {
      expect(text).not.toContain(minio.secretKey);
      expect(text).not.toContain(minio.accessKey);
    }
    await restored.end();
    await stopRestoredCopy(runbook);
  });
});
