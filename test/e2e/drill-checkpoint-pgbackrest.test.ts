// Drills on a schedule and migration checkpoints on a pgBackRest stanza
// (issue 18), through the real binaries: `lifeboat worker` in a Temporal
// namespace of this file's own, `lifeboat checkpoint`, `lifeboat drill
// --schedule` and `lifeboat schedules trigger` (no wall clock), against real
// pgBackRest 2.45 on a real PostgreSQL 15 (test/harness/pgbackrest.ts). The
// runbook's role is not a superuser: it has exactly what `lifeboat grants`
// prints, granted before pgBackRest's backup (a copy has its backup's grants).
//   - checkpoint: the restore point through SQL on the primary, its segment
//     waited for in pgBackRest's own listing; a segment moved out of the
//     stanza's repository is a gap the checkpoint refuses, nothing written.
//   - drill: a random time picked from pgBackRest's archive (its newest
//     commit read from segments fetched with archive-get), pgbackrest restore
//     into drill.dataDir, replay with its restore_command, invariants,
//     promote, smoke write, teardown; evidence names the engine and backup,
//     and the drill copy never archived into the stanza (no timeline 2).
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Client as TemporalClient } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../src/dev/demo-runbook';
import type { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { EngineBackup } from '../../src/engine/types';
import { waldump } from '../../src/drill/newest-commit';
import type { Evidence } from '../../src/recovery/contract';
import type { Runbook } from '../../src/runbook/schema';
import { skippedOnEngine } from '../../src/recovery/engine-preflight';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import type { PgBackRestStanza } from '../harness/pgbackrest';
import {
  createNamespace,
  grantRunbookRole,
  moveSegmentAside,
  startPgBackRestRunbook,
  triggerSchedule,
  type PgBackRestRunbook,
} from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';

const name = 'brdrill';
const role = 'lbdrill';
const cleanups: Cleanups = [];
let r: PgBackRestRunbook;
let s: PgBackRestStanza;
let engine: PgBackRestEngine;
let client: TemporalClient;
let runbook: Runbook;
let backup: EngineBackup;
const lifeboat = (...args: string[]) => r.lifeboat(...args);

beforeAll(async () => {
  const ns = await createNamespace(cleanups, 'brdrill');
  client = ns.client;
  r = await startPgBackRestRunbook(cleanups, { name, stanza: 'dr', pgUser: role, namespace: ns.namespace });
  ({ s, engine } = r);
  runbook = await r.load();
  await s.primary.query(DEMO_SCHEMA_SQL);
  await s.primary.query(DEMO_SEED_SQL);
  // The role from exactly what `lifeboat grants` prints, as the superuser; then pgBackRest's backup, which carries them.
  await grantRunbookRole(s.primary, runbook);
  backup = await engine.takeBackup({ type: 'full' });
  await r.startWorker();
});

afterAll(() => runCleanups(cleanups));

/** Names of the restore points the primary's pg_wal holds from `lsn` on, by pg_waldump. */
async function restorePointsSince(lsn: string): Promise<string[]> {
  const out = await waldump(`${runbook.cluster.pgBin}/pg_waldump`, [
    '--rmgr=XLOG',
    '-p',
    path.join(s.primary.dataDir, 'pg_wal'),
    '-s',
    lsn,
  ]);
  return [...out.matchAll(/desc: RESTORE_POINT (\S+)/g)].map((m) => m[1]!);
}

const insertLsn = async () =>
  (await s.primary.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0]!.lsn;

it('takes a migration checkpoint: the restore point through SQL, its segment found in the stanza by pgBackRest', async () => {
  const from = await insertLsn();
  const r = await lifeboat('checkpoint', '--runbook', name, '--label', 'before-0042');
  expect(r.code).toBe(0);
  const m =
    /^checkpoint "before-0042" taken: restore point at LSN ([0-9A-F]+\/[0-9A-F]+) \(\S+\), in segment ([0-9A-F]{24}), archived; a recovery to it starts from base backup (\S+)\n/.exec(
      r.stdout,
    );
  expect(m).not.toBeNull();
  const [, lsn, segment, fromBackup] = m!;
  expect(fromBackup).toBe(backup.backupId);
  const [{ walfile } = { walfile: '' }] = await s.primary.query<{ walfile: string }>(
    'select pg_walfile_name($1::pg_lsn) as walfile',
    [lsn],
  );
  expect(segment).toBe(walfile);
  // In pgBackRest's archive, as its own listing says; and in the WAL, once.
  expect((await engine.walFiles()).files).toContain(segment);
  expect(await restorePointsSince(from)).toEqual(['before-0042']);
});

it('refuses a checkpoint across a gap in the stanza: CHECKPOINT_REFUSED naming the segment, no restore point written', async () => {
  // A segment the newest backup's recovery would cross, moved out of the posix repository (never deleted).
  await s.primary.query(`insert into orders (customer, status, amount) values ('before-gap', 'paid', 1)`);
  await switchAndWaitArchived(s.primary);
  await s.primary.query(`insert into orders (customer, status, amount) values ('after-gap', 'paid', 1)`);
  await switchAndWaitArchived(s.primary);
  const segments = (await engine.walFiles()).files.filter((f) => /^[0-9A-F]{24}$/.test(f));
  const victim = segments[segments.length - 2]!;
  expect(victim > backup.endWal).toBe(true);
  const aside = moveSegmentAside(s, victim);
  try {
    const from = await insertLsn();
    const r = await lifeboat('checkpoint', '--runbook', name, '--label', 'across-gap');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `no checkpoint "across-gap" for runbook ${name}: a recovery to it could not be trusted: the WAL archive of pgBackRest stanza ${s.stanza} cannot carry backup ${backup.backupId} to the end of the archive: timeline 1 lacks 1 segment(s) ${victim} .. ${victim}`,
    );
    // Nothing written to the primary: no restore point in its WAL since.
    expect(await restorePointsSince(from)).toEqual([]);
  } finally {
    aside.back();
  }
  expect(existsSync(path.join(aside.dir, aside.stored))).toBe(true);
});

it('runs a drill on its schedule when triggered: restored by pgBackRest, to a time picked from its archive, passed; the copy never archived', async () => {
  // Commits after the backup, a second apart, each archived: the drill picks its target among them.
  for (let i = 0; i < 3; i++) {
    await s.primary.query(`insert into orders (customer, status, amount) values ('drill-${i}', 'paid', 5)`);
    await switchAndWaitArchived(s.primary);
    await new Promise((r) => setTimeout(r, 1100));
  }
  const created = await lifeboat('drill', '--runbook', name, '--schedule', '@daily');
  expect(created.code).toBe(0);
  const id = `lifeboat-drill-${name}`;
  cleanups.push(() => client.schedule.getHandle(id).delete());
  const workflowId = await triggerSchedule(client, lifeboat, { id, runbook: name, kind: 'drill' });
  const evidence = (await client.workflow.getHandle(workflowId).result()) as Evidence;
  const failed = evidence.steps.find((x) => x.state === 'failed');
  expect(failed?.error).toBeUndefined();
  expect(evidence).toMatchObject({
    kind: 'drill',
    engine: 'pgbackrest',
    runbook: name,
    backupId: backup.backupId,
    validationStatus: 'passed',
  });
  // A time from pgBackRest's archive, between the backup's end and the newest archived commit: not the end of the archive.
  expect('time' in evidence.target).toBe(true);
  const at = Date.parse((evidence.target as { time: string }).time);
  expect(at).toBeGreaterThan(Date.parse(backup.endTime));
  expect(at).toBeLessThan(Date.now());
  expect(evidence.steps.filter((x) => x.id !== 'record-evidence').map((x) => `${x.id}:${x.state}`)).toEqual([
    'pick-target:done',
    'preflight:done',
    'restore-base-backup:done',
    'replay-wal:done',
    'run-invariants:done',
    'promote:done',
    'smoke-write:done',
    'teardown:done',
  ]);
  // Preflight checked that the stanza's archive reaches the drawn time; only the privileges are not checked there.
  expect(evidence.notes).toContain(skippedOnEngine(`pgBackRest stanza ${s.stanza}`));
  // The promoted drill copy (timeline 2) archived nothing into the stanza: archive_mode off.
  const wal = await engine.walFiles();
  expect(wal.files.filter((f) => f.startsWith('00000002'))).toEqual([]);
  // Torn down: the drill's directory is gone.
  expect(existsSync(runbook.drill!.dataDir)).toBe(false);
  // The schedule reports the run.
  const after = await client.schedule.getHandle(id).describe();
  expect(after.info.recentActions.map((a) => a.action.workflow.workflowId)).toContain(workflowId);
});
