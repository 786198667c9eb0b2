// Backups and expiry through the engine on a pgBackRest stanza (issue 18),
// the real binary and a `lifeboat worker` in its own namespace of the dev
// Temporal server, against real pgBackRest 2.45 on a real PostgreSQL 15
// (test/harness/pgbackrest.ts):
//   - lifeboat backup --type full, then --type incr: pgbackrest backup through
//     the baseBackup workflow; lifeboat backups lists both with their types,
//     lifeboat check names the new one; --type incr on Lifeboat's own engine
//     is refused before anything starts;
//   - the backup schedule on that runbook, triggered (no wall clock): a diff,
//     then expireBackups through pgBackRest's retention;
//   - lifeboat expire with repo1-retention-full=1 after two fulls: the dry run
//     (pgbackrest expire --dry-run) changes nothing, then pgBackRest itself
//     expires the older full and what builds on it; a runbook that also sets
//     retention: or backup.retainFull, or --keep, is refused naming the field.
//   - the activity's heartbeats: pgBackRest's own percent per file, rising to
//     100; a stanza pgBackRest does not have is REPOSITORY_INVALID.
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client as TemporalClient } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { EngineBackup } from '../../src/engine/types';
import type { EngineBaseBackupResult } from '../../workflows/base-backup';
import type { ExpireBackupsResult } from '../../workflows/expire-backups';
import { runBaseBackup } from '../../activities/backup';
import { applyExpiry } from '../../activities/retention';
import { activity, failureOf } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import type { PgBackRestStanza } from '../harness/pgbackrest';
import {
  createNamespace,
  startPgBackRestRunbook,
  triggerSchedule,
  type PgBackRestRunbook,
} from '../harness/pgbackrest-e2e';

const cleanups: Cleanups = [];
let r: PgBackRestRunbook;
let s: PgBackRestStanza;
let engine: PgBackRestEngine;
let client: TemporalClient;
let runbooksDir: string;
const lifeboat = (...args: string[]) => r.lifeboat(...args);

beforeAll(async () => {
  const ns = await createNamespace(cleanups, 'brbackup');
  client = ns.client;
  // pgBackRest's retention decides: no backup.retainFull (the demo sets one) in the runbook.
  r = await startPgBackRestRunbook(cleanups, {
    name: 'brbk',
    stanza: 'bk',
    namespace: ns.namespace,
    edit: (demo) => demo.replace(/, retainFull: \d+/, ''),
  });
  ({ s, engine, runbooksDir } = r);
  const { yaml, engineLine } = r;
  expect(yaml).not.toContain('retainFull');
  // The same cluster with Lifeboat's own engine (no engine:), and with the runbook's own retention tiers too.
  writeFileSync(path.join(runbooksDir, 'brown.yaml'), yaml.replace('name: brbk', 'name: brown'));
  writeFileSync(
    path.join(runbooksDir, 'brtiers.yaml'),
    `${yaml.replace('name: brbk', 'name: brtiers')}retention: { full: { daily: 7 }, wal: 7d }\n${engineLine}`,
  );
  writeFileSync(
    path.join(runbooksDir, 'brnone.yaml'),
    `${yaml.replace('name: brbk', 'name: brnone')}${engineLine.replace(`stanza: ${s.stanza}`, 'stanza: nosuch')}`,
  );
  // The demo's own backup.retainFull kept.
  await r.another({ name: 'brkeep' });
  await s.primary.query('create table t (id int primary key)');
  await r.startWorker();
});

afterAll(() => runCleanups(cleanups));

const LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

async function listed(): Promise<EngineBackup[]> {
  const r = await lifeboat('backups', '--runbook', 'brbk', '--json');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { backups: EngineBackup[] }).backups;
}

describe('lifeboat backup and expire with engine: pgbackrest', () => {
  let full1: string;
  let incr: string;
  let diff: string;

  it('takes a full then an incr through the baseBackup workflow; backups lists both with their types, check names the newest', async () => {
    const full = await lifeboat('backup', '--runbook', 'brbk', '--type', 'full', '--json');
    expect(full.code).toBe(0);
    expect(full.stderr).toMatch(/^started baseBackup backup-brbk-\S+ \(runbook brbk, type full\)$/m);
    const f = (JSON.parse(full.stdout) as { backup: EngineBaseBackupResult }).backup;
    expect([f.engine, f.type, f.source, f.cluster, f.prior]).toEqual([
      'pgbackrest',
      'full',
      `pgBackRest stanza ${s.stanza}`,
      'brbk',
      undefined,
    ]);
    expect(f.backupId).toMatch(LABEL);
    full1 = f.backupId;

    await s.primary.query('insert into t select generate_series(1, 1000)');
    const r = await lifeboat('backup', '--runbook', 'brbk', '--type', 'incr');
    expect(r.code).toBe(0);
    const m =
      /^backup (\S+) \(incr on (\S+)\) of brbk taken by pgBackRest in pgBackRest stanza bk: .* stored\), WAL ([0-9A-F]+\/[0-9A-F]+) \.\. ([0-9A-F]+\/[0-9A-F]+) on timeline 1\n$/.exec(
        r.stdout,
      );
    expect(m, r.stdout).not.toBeNull();
    incr = m![1]!;
    expect([incr.startsWith(`${full1}_`), incr.endsWith('I'), m![2]]).toEqual([true, true, full1]);

    // What pgBackRest itself lists, as lifeboat backups shows it.
    const backups = await listed();
    expect(backups.map((b) => [b.backupId, b.type, b.prior])).toEqual([
      [full1, 'full', undefined],
      [incr, 'incr', full1],
    ]);
    expect(backups).toEqual(await engine.listBackups());
    expect(backups[1]).toMatchObject({ startLsn: m![3], endLsn: m![4] });
    const text = await lifeboat('backups', '--runbook', 'brbk');
    expect(text.stdout).toMatch(new RegExp(`${incr} .* incr `));

    const check = await lifeboat('check', '--runbook', 'brbk');
    expect(check.stdout).toContain(`backups: 2, oldest ${full1}, newest ${incr}\n`);
    expect(check.code).toBe(0);
  });

  it("refuses --type incr on Lifeboat's own engine and a type that is none, before anything starts", async () => {
    const own = await lifeboat('backup', '--runbook', 'brown', '--type', 'incr');
    expect(own.code).toBe(2);
    expect(own.stderr).toContain(
      "--type incr: runbook brown uses Lifeboat's own engine, which takes full base backups only (pg_basebackup)",
    );
    expect(own.stderr).not.toContain('started baseBackup');
    const bad = await lifeboat('backup', '--runbook', 'brbk', '--type', 'differential');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--type differential: expected full, diff or incr');
    expect((await engine.listBackups()).map((b) => b.backupId)).toEqual([full1, incr]);
  });

  it('runs a diff on the backup schedule when triggered, and expiry through pgBackRest after it', async () => {
    const created = await lifeboat('backup', '--runbook', 'brbk', '--schedule', '30 4 * * *', '--type', 'diff');
    expect(created.code).toBe(0);
    const id = 'lifeboat-backup-brbk';
    cleanups.push(() => client.schedule.getHandle(id).delete());
    const workflowId = await triggerSchedule(client, lifeboat, { id, runbook: 'brbk', kind: 'backup' });
    const result = (await client.workflow.getHandle(workflowId).result()) as EngineBaseBackupResult;
    expect([result.engine, result.type, result.prior]).toEqual(['pgbackrest', 'diff', full1]);
    // repo1-retention-full=10: pgBackRest's retention expires nothing, and the child said so.
    expect(result.expiry).toEqual({ workflowId: `${workflowId}-expire`, deletedBackups: [], walDeletedCount: 0 });
    const child = (await client.workflow.getHandle(`${workflowId}-expire`).result()) as ExpireBackupsResult;
    expect([child.plan.engine?.source, child.plan.expire, child.applied]).toEqual([
      `pgBackRest stanza ${s.stanza}`,
      [],
      undefined,
    ]);
    diff = result.backupId;
    expect((await listed()).map((b) => b.backupId)).toEqual([full1, incr, diff]);
  });

  it("expires through pgBackRest's own retention: the dry run changes nothing, then the older full goes with what builds on it", async () => {
    const full2 = (await engine.takeBackup({ type: 'full' })).backupId;
    const all = [full1, incr, diff, full2];
    expect((await listed()).map((b) => b.backupId)).toEqual(all);
    // Set after the second full: pgBackRest's own expire after a backup would otherwise act first.
    writeFileSync(
      s.config,
      readFileSync(s.config, 'utf8').replace('repo1-retention-full=10', 'repo1-retention-full=1'),
    );

    // The runbook's own retention does not apply here: refused, naming the fields.
    const tiers = await lifeboat('expire', '--runbook', 'brtiers', '--dry-run');
    expect(tiers.code).toBe(2);
    expect(tiers.stderr).toContain(
      "runbook brtiers sets retention and engine pgbackrest (stanza bk): pgBackRest's own retention decides what expires, not the runbook's",
    );
    expect(tiers.stderr).toContain(
      `remove retention from the runbook; set repo1-retention-full (and -diff, -archive) in ${s.config} instead`,
    );
    const retainFull = await lifeboat('expire', '--runbook', 'brkeep');
    expect(retainFull.code).toBe(2);
    expect(retainFull.stderr).toContain('runbook brkeep sets backup.retainFull and engine pgbackrest (stanza bk)');
    const keep = await lifeboat('expire', '--runbook', 'brbk', '--keep', '1');
    expect(keep.code).toBe(2);
    expect(keep.stderr).toContain(
      '--keep 1: runbook brbk uses engine pgbackrest (stanza bk), whose own retention decides',
    );
    expect((await listed()).map((b) => b.backupId)).toEqual(all);

    const dry = await lifeboat('expire', '--runbook', 'brbk', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`expire brbk: cluster brbk in pgBackRest stanza bk, by pgBackRest's own retention`);
    expect(dry.stdout).toMatch(
      new RegExp(`^  \\[DRY-RUN\\] repo1: .*expire full backup set ${full1}, ${incr}, ${diff}$`, 'm'),
    );
    expect(dry.stdout).toContain(`backups kept:\n  ${full2}\n`);
    expect(dry.stdout).toMatch(
      new RegExp(`backups pgBackRest would expire:\\n  ${full1}  full, .*\\n  ${incr}  incr, .*\\n  ${diff}  diff, `),
    );
    // Nothing removed: pgBackRest lists what it listed.
    expect((await listed()).map((b) => b.backupId)).toEqual(all);

    const done = await lifeboat('expire', '--runbook', 'brbk', '--json');
    expect(done.code).toBe(0);
    const r = JSON.parse(done.stdout) as ExpireBackupsResult;
    expect(r.applied?.engine?.backups.map((b) => b.backupId)).toEqual([full1, incr, diff]);
    expect(r.applied?.deletedBackups.map((b) => b.backupId)).toEqual([full1, incr, diff]);
    expect((await listed()).map((b) => b.backupId)).toEqual([full2]);
    expect((await lifeboat('check', '--runbook', 'brbk')).code).toBe(0);

    // A plan made on pgBackRest is never applied to a runbook now on Lifeboat's own engine (nor the reverse).
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const moved = await failureOf(activity(applyExpiry, { runbook: 'brown', plan: r.plan }));
    expect([moved.type, moved.message.split('\n')[0]]).toEqual([
      'RUNBOOK_INVALID',
      `runbook brown now uses Lifeboat's own engine, but this expiry was planned on pgBackRest stanza bk: nothing was deleted`,
    ]);
  });

  it("heartbeats pgBackRest's own percent while it copies, and maps its errors", async () => {
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const { result, beats } = await activity(runBaseBackup, { runbook: 'brbk', type: 'diff' });
    expect([result.engine, result.type]).toEqual(['pgbackrest', 'diff']);
    const percents = (beats as { phase: string; percent?: number; text: string }[]).map((b) => {
      expect(b.phase).toBe('pgbackrest');
      expect(b.text).toBe(`pgbackrest backup --type=diff: ${b.percent}%`);
      return b.percent!;
    });
    // One per file pgBackRest copied, rising to 100.
    expect(percents.length).toBeGreaterThan(0);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents[percents.length - 1]).toBe(100);

    const f = await failureOf(activity(runBaseBackup, { runbook: 'brnone' }));
    expect(f.type).toBe('REPOSITORY_INVALID');
    expect(f.message.split('\n')[0]).toMatch(/^pgBackRest has no stanza nosuch: /);
  });
});
