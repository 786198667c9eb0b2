// `lifeboat backups`, `check` and `doctor` on a runbook with
// `engine: { kind: pgbackrest, stanza, configPath }`, the real binary against a
// real pgBackRest 2.45 stanza on a real PostgreSQL 15 (test/harness/pgbackrest.ts):
// the catalog is pgBackRest's, check runs pgbackrest check and verify, and
// reports a segment moved aside in its repository as a WAL gap with
// pgBackRest's own command in the hint (moved back after), which a recovery's
// preflight refuses as WAL_GAP through the engine (backups and expiry run
// there too: backup-expire-pgbackrest.test.ts; the warm standby:
// standby-pgbackrest.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { EngineBackup } from '../../src/engine/types';
import { nextSegmentName } from '../../src/wal/names';
import { activity, failureOf } from '../harness/activity';
import { preflight } from '../../activities/recovery';
import { skippedOnEngine } from '../../src/recovery/engine-preflight';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import type { PgBackRestStanza } from '../harness/pgbackrest';
import { moveSegmentAside, startPgBackRestRunbook, type PgBackRestRunbook } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';

const cleanups: Cleanups = [];
let r: PgBackRestRunbook;
let s: PgBackRestStanza;
let engine: PgBackRestEngine;
let backups: EngineBackup[];
const lifeboat = (...args: string[]) => r.lifeboat(...args);

beforeAll(async () => {
  // Lifeboat's own repository still holds evidence and audit; the backups are pgBackRest's.
  r = await startPgBackRestRunbook(cleanups, { name: 'brcli' });
  ({ s, engine } = r);
  await s.primary.query('create table t (id int primary key)');
  await engine.takeBackup({ type: 'full' });
  await s.primary.query('insert into t select generate_series(1, 10)');
  await engine.takeBackup({ type: 'diff' });
  for (let i = 0; i < 3; i++) await switchAndWaitArchived(s.primary);
  backups = await engine.listBackups();
});

afterAll(() => runCleanups(cleanups));

describe('lifeboat backups and check with engine: pgbackrest', () => {
  it("lists pgBackRest's backups", async () => {
    const json = await lifeboat('backups', '--runbook', 'brcli', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ engine: 'pgbackrest', source: `pgBackRest stanza ${s.stanza}`, backups });
    const text = await lifeboat('backups', '--runbook', 'brcli');
    expect(text.code).toBe(0);
    for (const b of backups) expect(text.stdout).toContain(b.backupId);
    expect(text.stdout).toMatch(/ diff /);
    expect(text.stdout).toContain(`2 backups in pgBackRest stanza ${s.stanza}\n`);
  });

  it("doctor lists pgBackRest's backups without judging them: they carry no privilege record", async () => {
    const r = await lifeboat('doctor', '--runbook', 'brcli');
    expect(r.stdout).toContain(
      `\n  2 backups in pgBackRest stanza ${s.stanza}, newest ${backups[1]!.backupId}: no privilege record (a restored copy has the grants of the moment each was taken)\n`,
    );
    expect(r.stdout).not.toContain('lifeboat backup --runbook');
    expect(r.code).toBe(0);
  });

  it('checks the archiver, pgbackrest check and verify, and reports a segment moved aside as a gap', async () => {
    const ok = await lifeboat('check', '--runbook', 'brcli');
    expect(ok.stdout).toContain(
      `pgbackrest --config=${s.config} --stanza=${s.stanza} check: the archiver reaches the repository`,
    );
    expect(ok.stdout).toContain('verify: no damaged or missing file');
    expect(ok.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(ok.code).toBe(0);

    const newest = backups[backups.length - 1]!;
    // A recovery's preflight reads the same stanza through the engine: the newest backup for latest, and what it did not check.
    process.env.LIFEBOAT_RUNBOOKS_DIR = r.runbooksDir;
    const recovery = {
      runbook: 'brcli',
      target: { latest: true as const },
      mode: 'side-by-side' as const,
      dryRun: false,
    };
    const { result: plan } = await activity(preflight, recovery);
    expect([plan.backup.backupId, plan.walFrom, plan.primaryReachable]).toEqual([
      newest.backupId,
      newest.startWal,
      true,
    ]);
    expect(plan.warnings).toContain(skippedOnEngine(`pgBackRest stanza ${s.stanza}`));
    const victim = nextSegmentName(newest.endWal);
    const aside = moveSegmentAside(s, victim);
    try {
      const bad = await lifeboat('check', '--runbook', 'brcli');
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(
        `WAL gap on timeline 1: ${victim} is missing (needed by backup ${backups[0]!.backupId} and every later one)\n`,
      );
      expect(bad.stdout).toContain(
        `  HINT: if the primary still has it in pg_wal, push it again as the postgres user, in the data directory: pgbackrest --config=${s.config} --stanza=${s.stanza} archive-push pg_wal/${victim}\n`,
      );
      expect(bad.stdout.trimEnd().split('\n').pop()).toBe('unhealthy: 1 problem');
      const json = JSON.parse((await lifeboat('check', '--runbook', 'brcli', '--json')).stdout) as {
        healthy: boolean;
        engine: string;
        problems: { kind: string }[];
      };
      expect([json.healthy, json.engine, json.problems.map((p) => p.kind)]).toEqual([false, 'pgbackrest', ['wal-gap']]);
      // The recovery's preflight refuses before anything is touched, naming the segment.
      const refused = await failureOf(activity(preflight, recovery));
      expect(refused.type).toBe('WAL_GAP');
      expect(refused.message.split('\n')[0]).toBe(
        `the WAL archive of pgBackRest stanza ${s.stanza} cannot carry backup ${newest.backupId} to the end of the archive: timeline 1 lacks 1 segment(s) ${victim} .. ${victim}`,
      );
    } finally {
      aside.back();
    }
    expect((await lifeboat('check', '--runbook', 'brcli')).code).toBe(0);
  });
});
