// Fault: the object store frozen (SIGSTOP), then killed (SIGKILL) and started
// again, while a primary under a write load archives into it through
// `lifeboat archive-push`; then a point-in-time recovery to a target INSIDE
// the outage, whose WAL reached the store only after it came back.
//
// The MinIO is the test's own (the shared one serves every other test file).
// Every wait is for a state that lasts while the fault lasts: archiving
// behind by whole segments while the store is frozen, a failed archive-push
// once it is dead, the archiver caught up once it is back. The target is
// taken with the writers held, so its fingerprint and its LSN are one moment.
//
// Checked: the recovered rows are exactly those committed before the target
// (a fingerprint over every row, taken on the primary at the target), and
// none after it; no promotion before approval; every WAL object in the store
// decodes to the bytes of the same file in the primary's pg_wal, and
// `lifeboat check` finds the chain whole. Printed: how long archiving was
// behind and the recovery's times.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys, walFileOfKey } from '../../src/repository/layout';
import { loadRunbook } from '../../src/runbook/load';
import { fetchWalFile } from '../../src/wal/get';
import { nextSegmentName, walFileKind } from '../../src/wal/names';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { fingerprint, queryAt, startFaultCluster, startWriteLoad, waitForStep } from '../harness/faults-cluster';
import { startOwnMinio } from '../harness/faults-services';
import { stopRestoredCopy, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

interface Archiver {
  current: string;
  lastArchived: string | null;
  archived: number;
  failed: number;
}

async function archiver(pg: Primary): Promise<Archiver> {
  const [a] = await pg.query<{ current: string; last: string | null; archived: string; failed: string }>(
    `select pg_walfile_name(pg_current_wal_lsn()) as current, last_archived_wal as last, archived_count as archived, failed_count as failed from pg_stat_archiver`,
  );
  // The last file archived may be a backup history file (…02.00000028.backup):
  // it is archived after its segment, so that segment is the last one archived.
  return {
    current: a!.current,
    lastArchived: a!.last?.slice(0, 24) ?? null,
    archived: Number(a!.archived),
    failed: Number(a!.failed),
  };
}

/** How many segments lie from `from` (exclusive) to `to` (inclusive), same timeline. */
function segmentsBetween(from: string, to: string): number {
  let n = 0;
  for (let s = from; s < to; s = nextSegmentName(s)) n++;
  return n;
}

it(
  'recovers exactly the rows committed before a target inside an object-store outage (frozen, then killed and restarted under a write load), and archive-push stored no partial or wrong object',
  { timeout: 900_000 },
  async () => {
    const minio = await startOwnMinio('store');
    cleanups.push(() => minio.stop());
    // This process (backup, workers, and through postmasterEnv the restored copy) uses the test's MinIO.
    Object.assign(process.env, minio.env);
    const name = `store-${process.pid}`;
    const host = `store${process.pid}`;
    const cluster = await startFaultCluster({
      name,
      host,
      repoUrl: `s3://${minio.bucket}/${name}`,
      storeEnv: minio.env,
      invariants: [
        {
          name: 'no reading without a meter',
          sql: `select count(*) from meter_reading where meter is null`,
          expect: 0,
        },
      ],
      // Keep every segment in pg_wal, archived or not, to compare with what the store holds.
      conf: ['wal_keep_size = 4GB', 'max_wal_size = 4GB'],
      cleanups,
    });
    process.env.LIFEBOAT_RUNBOOKS_DIR = cluster.runbooksDir;
    const runbook = await loadRunbook(name);
    cleanups.push(() => stopRestoredCopy(runbook));
    const { pg } = cluster;

    await pg.query(
      `create table meter_reading (id bigserial primary key, meter int not null, reading numeric(12,3) not null, note text not null)`,
    );
    await pg.query(
      `insert into meter_reading (meter, reading, note) select g % 50, g * 0.25, 'seed ' || g from generate_series(1, 2000) g`,
    );
    await takeBaseBackup({ runbook });

    // The write load: two sessions, about 200 kB of WAL per transaction.
    const load = startWriteLoad(
      pg.connection,
      (w) =>
        `insert into meter_reading (meter, reading, note) select ${w * 100} + g % 100, g * 0.5, repeat(md5(g::text || clock_timestamp()::text), 24) from generate_series(1, 200) g`,
    );
    cleanups.push(() => load.stop().catch(() => undefined));
    const healthy = await archiver(pg);
    await waitFor(
      'two segments archived under the load',
      async () => ((await archiver(pg)).archived >= healthy.archived + 2 ? true : undefined),
      { timeoutMs: 300_000, intervalMs: 200 },
    );

    // Frozen: archive-push's requests get no answer; archiving falls behind.
    const frozenAt = Date.now();
    minio.freeze();
    const atFreeze = await archiver(pg);
    await waitFor(
      'archiving three segments behind while the store is frozen',
      async () => {
        const a = await archiver(pg);
        return a.lastArchived && segmentsBetween(a.lastArchived, a.current) >= 3 ? a : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 200 },
    );

    // The target, inside the outage: writers held, so the fingerprint and the LSN are one moment.
    await load.holdWriters();
    const [{ lsn: target, walfile: targetSegment } = { lsn: '', walfile: '' }] = await pg.query<{
      lsn: string;
      walfile: string;
    }>(`select pg_current_wal_lsn()::text as lsn, pg_walfile_name(pg_current_wal_lsn()) as walfile`);
    const atTarget = await fingerprint(pg.connection, 'meter_reading');
    const [{ maxId } = { maxId: '' }] = await pg.query<{ maxId: string }>(
      `select max(id)::text as "maxId" from meter_reading`,
    );
    const targetArchiver = await archiver(pg);
    load.releaseWriters();
    // Not archived when chosen: only the store's return can bring its WAL back.
    expect(targetArchiver.lastArchived! < targetSegment).toBe(true);
    await waitFor(
      'two more segments written after the target',
      async () => (segmentsBetween(targetSegment, (await archiver(pg)).current) >= 2 ? true : undefined),
      { timeoutMs: 300_000, intervalMs: 200 },
    );

    // Killed while frozen, then archive-push fails against a dead store.
    const killedAt = Date.now();
    await minio.kill();
    await waitFor(
      'archive-push to fail against the dead store',
      async () => ((await archiver(pg)).failed > atFreeze.failed ? true : undefined),
      { timeoutMs: 600_000, intervalMs: 200 },
    );
    const atRestart = await archiver(pg);
    await minio.restart();
    const restartedAt = Date.now();
    const caughtUp = await waitFor(
      `the archiver to catch up to ${atRestart.current}`,
      async () => {
        const a = await archiver(pg);
        return a.lastArchived !== null && a.lastArchived >= atRestart.current ? a : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 200 },
    );
    const caughtUpAt = Date.now();
    await load.stop();
    const after = await fingerprint(pg.connection, 'meter_reading');
    expect(after.rows).toBeGreaterThan(atTarget.rows);
    await switchAndWaitArchived(pg, 300_000);

    // No partial or wrong object: every WAL object decodes, matches its
    // recorded sha256 (fetchWalFile) and the bytes of the file in pg_wal.
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const objects = await repo.list(keys.walPrefix(name));
    let compared = 0;
    const stored = new Set<string>();
    for (const o of objects) {
      const walFile = walFileOfKey(name, o.key);
      expect(walFile && walFileKind(walFile) !== 'other', `unexpected object ${o.key}`).toBe(true);
      if (walFileKind(walFile!) !== 'segment') continue;
      stored.add(walFile!);
      const got = await fetchWalFile(repo, name, walFile!);
      const local = path.join(pg.dataDir, 'pg_wal', walFile!);
      if (!existsSync(local)) continue;
      expect(got!.sha256, `${walFile} in the store differs from pg_wal`).toBe(
        createHash('sha256').update(readFileSync(local)).digest('hex'),
      );
      compared++;
    }
    // Every segment of the outage is there and was compared.
    for (let s = atFreeze.lastArchived!; s <= caughtUp.lastArchived!; s = nextSegmentName(s))
      expect(stored.has(s), `${s} missing from the store`).toBe(true);
    const lifeboat = cliRunner(() => process.env);
    const check = await lifeboat('check', '--runbook', name);
    expect(check.stdout).toMatch(/^healthy$/m);
    expect(check.code).toBe(0);

    // The recovery to the target inside the outage.
    const taskQueue = `store-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${name}`,
      args: [
        {
          runbook: name,
          target: { lsn: target },
          incident: 'INC-S3',
          reason: 'recover to a point inside the store outage',
        },
      ],
    });
    await waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
    const waiting = await waitForStep(wf, 'approve-promote', 'awaiting-approval', 600_000);
    const restored = { host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' };
    const [paused] = await queryAt<{ r: boolean; later: string }>(
      restored,
      `select pg_is_in_recovery() as r, (select count(*) from meter_reading where id > ${maxId})::text as later`,
    );
    expect(paused).toEqual({ r: true, later: '0' });
    expect(waiting.steps.find((s) => s.id === 'promote')!.state).toBe('pending');
    expect(await fingerprint(restored, 'meter_reading')).toEqual(atTarget);

    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] });
    await waitForStep(wf, 'approve-resume', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'alice' }] });
    const evidence = (await wf.result()) as Evidence;
    const [promoted] = await queryAt<{ r: boolean }>(restored, `select pg_is_in_recovery() as r`);
    expect(promoted!.r).toBe(false);
    expect(await fingerprint(restored, 'meter_reading')).toEqual(atTarget);
    expect(evidence.validationStatus).toBe('passed');
    const promote = evidence.steps.find((s) => s.id === 'promote')!;
    expect(Date.parse(promote.startedAt!)).toBeGreaterThanOrEqual(
      Date.parse(evidence.approvals.find((a) => a.step === 'approve-promote')!.at),
    );

    const took = (id: string) => {
      const s = evidence.steps.find((x) => x.id === id)!;
      return seconds(Date.parse(s.finishedAt!) - Date.parse(s.startedAt!));
    };
    process.stdout.write(
      `[fault object-store] store frozen ${seconds(killedAt - frozenAt)}, then dead ${seconds(restartedAt - killedAt)} (SIGKILL to answering again); ` +
        `archiving behind ${seconds(caughtUpAt - frozenAt)} in all, ${seconds(caughtUpAt - restartedAt)} of catching up after the restart; ` +
        `${segmentsBetween(atRestart.lastArchived!, atRestart.current)} segments behind at the restart (${segmentsBetween(targetArchiver.lastArchived!, targetArchiver.current)} when the target was taken), ` +
        `${caughtUp.failed - atFreeze.failed} failed archive-push calls, ${load.committed()} load transactions; ` +
        `${compared} stored segments equal to pg_wal; recovery to the target inside the outage: RTO ${evidence.rtoObservedSeconds} s ` +
        `(restore ${took('restore-base-backup')}, replay ${took('replay-wal')}, ${evidence.walSegmentsReplayed} segments), ${atTarget.rows} rows at the target\n`,
    );
  },
);
