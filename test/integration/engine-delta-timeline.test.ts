// issue 18 on a real pgBackRest 2.45 stanza and PostgreSQL 15, through the
// restore activities' own functions (restore, replay-wal, promote):
//   - engine.delta: true in place over the primary's directory is refused by
//     the preflight and by the restore, the primary untouched (still running,
//     same files, nothing moved aside);
//   - delta over this recovery's own earlier copy (a restore again after a
//     retarget to an earlier point): rewritten in place, no directory moved
//     aside, exact rows at the earlier target;
//   - the promoted copy archives into the stanza on its new timeline (its
//     history file and segments are in pgBackRest's archive), and a second
//     recovery from the same backup (timeline 1) to a restore point made on
//     the promoted copy (timeline 2) gives exact rows: pgBackRest restores with
//     --target-timeline=latest and replay follows the history file the first
//     copy archived; replay-wal reports the timeline it paused on (2), not
//     the last restartpoint's (pg_control_checkpoint, 1 there when measured).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLifeboatError } from '../../src/errors';
import type { Target } from '../../src/recovery/contract';
import { preflightOnEngine } from '../../src/recovery/engine-preflight';
import { restoreWithEngine } from '../../src/restore/engine-restore';
import { promoteRestored } from '../../src/restore/instance';
import { replayWal } from '../../src/restore/replay';
import { checkSiteFree } from '../../src/restore/site-check';
import type { Runbook } from '../../src/runbook/schema';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import type { PgBackRestStanza } from '../harness/pgbackrest';
import { restoredSession, startPgBackRestRunbook, type PgBackRestRunbook } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

/** The stanza and, on it, runbook dtdelta (engine.delta: true); the other runbooks are written beside it. */
let r: PgBackRestRunbook;
let s: PgBackRestStanza;
let backupId: string;
const noProgress = { onProgress: () => undefined };

/** One statement's rows on the runbook's restored copy, as the superuser (a session of its own). */
async function onCopy<T>(runbook: Runbook, sql: string, params: unknown[] = []): Promise<T[]> {
  const session: Cleanups = [];
  const c = await restoredSession(session, runbook, 'postgres');
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await runCleanups(session);
  }
}

const rowsOf = async (runbook: Runbook) =>
  (await onCopy<{ id: number }>(runbook, 'select id from t order by id')).map((row) => row.id);
const settingOf = async (runbook: Runbook, name: string) =>
  (await onCopy<{ v: string }>(runbook, 'select current_setting($1) as v', [name]))[0]!.v;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function restoreAndReplay(runbook: Runbook, workflowId: string, runId: string, target: Target) {
  const restored = await restoreWithEngine(
    runbook,
    { runbook: runbook.name, backupId, mode: 'side-by-side', workflowId, runId },
    noProgress,
  );
  const replayed = await replayWal(runbook, { runbook: runbook.name, target, workflowId, runId }, noProgress);
  return { restored, replayed };
}

beforeAll(async () => {
  r = await startPgBackRestRunbook(cleanups, {
    name: 'dtdelta',
    stanza: 'dt',
    host: `dt${process.pid}`,
    engine: 'delta: true',
  });
  s = r.s;
  await s.primary.query('create table t (id int primary key)');
  await s.primary.query('insert into t select generate_series(1, 100)');
  backupId = (await r.engine.takeBackup({ type: 'full' })).backupId;
  await s.primary.query('insert into t select generate_series(101, 200)');
  await s.primary.query(`select pg_create_restore_point('p1')`);
  await s.primary.query('insert into t select generate_series(201, 300)');
  await s.primary.query(`select pg_create_restore_point('p2')`);
  await switchAndWaitArchived(s.primary);
}, 240_000);

describe('engine.delta and timelines on a pgBackRest stanza', () => {
  it("refuses delta in place over the primary's directory, before and at the restore, touching nothing", async () => {
    const pg = s.primary;
    const runbook = await r.another({
      name: 'dtinplace',
      engine: 'delta: true',
      edit: (y) =>
        y.replace(
          /^restore: \{ host: (\S+), dataDir: \S+, port: \d+, mode: side-by-side \}$/m,
          `restore: { host: $1, dataDir: ${pg.dataDir}, port: ${pg.port}, mode: in-place }`,
        ),
    });
    expect(runbook.restore).toMatchObject({ dataDir: pg.dataDir, mode: 'in-place' });
    const entries = readdirSync(pg.dataDir).sort();
    const pid = readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8');
    const siblings = () => readdirSync(path.dirname(pg.dataDir)).filter((e) => e.includes('.lifeboat'));
    const before = siblings();

    const refusals = [
      await checkSiteFree(runbook, {
        runbook: runbook.name,
        backupId,
        mode: 'in-place',
        workflowId: 'dt-inplace',
        runId: 'r1',
        backupBytes: 0,
        walSegments: 0,
      }).catch((e: unknown) => e),
      await restoreWithEngine(
        runbook,
        { runbook: runbook.name, backupId, mode: 'in-place', workflowId: 'dt-inplace', runId: 'r1' },
        noProgress,
      ).catch((e: unknown) => e),
    ];
    for (const err of refusals) {
      expect(isLifeboatError(err) && err.code).toBe('DATA_DIR_NOT_EMPTY');
      if (!isLifeboatError(err)) continue;
      expect(err.what).toContain("holds the primary's directory; engine.delta: true in runbook dtinplace");
      expect(err.hints[0]).toBe('nothing was stopped, moved or written');
    }
    // The primary: same files, same postmaster, still answering; nothing moved aside.
    expect(readdirSync(pg.dataDir).sort()).toEqual(entries);
    expect(readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8')).toBe(pid);
    expect((await pg.query<{ n: string }>('select count(*) as n from t'))[0]!.n).toBe('300');
    expect(siblings()).toEqual(before);
  });

  it('restores again with delta over its own copy, then the promoted copy archives on timeline 2 and a second recovery reaches it', async () => {
    const runbook = await r.load();
    const dir = runbook.restore.dataDir;
    const parent = path.dirname(dir);
    // What moveAside would make of it: <dir>.lifeboat-<time> (data-dir.ts).
    const aside = () => readdirSync(parent).filter((e) => /\.lifeboat-\d{8}T\d{6}Z/.test(e));

    // First restore: an absent directory, a plain restore; replay to p2.
    const first = await restoreAndReplay(runbook, 'dt-delta', 'r1', { name: 'p2' });
    expect(first.restored.movedAside).toBeUndefined();
    expect(await rowsOf(runbook)).toEqual(range(1, 300));
    // What the running copy uses (the backup's own archive_command, earlier in postgresql.auto.conf, is overridden).
    expect(await settingOf(runbook, 'archive_command')).toBe(
      `pgbackrest --config=${s.config} --pg1-path=${dir} --stanza=${s.stanza} archive-push %p`,
    );
    expect(await settingOf(runbook, 'archive_mode')).toBe('on');

    // A retarget to the earlier p1: replay cannot go back, so the same workflow restores again.
    // With delta the copy is rewritten where it is: nothing moved aside.
    // A kept entry inside the copy (what an in-place restore on a mount point moves aside): delta would remove it, so refused.
    mkdirSync(path.join(dir, '.lifeboat-aside-20261204T000000Z'));
    const keptRefusal = await restoreWithEngine(
      runbook,
      { runbook: runbook.name, backupId, mode: 'side-by-side', workflowId: 'dt-delta', runId: 'r2' },
      noProgress,
    ).catch((e: unknown) => e);
    expect(isLifeboatError(keptRefusal) && keptRefusal.what).toContain(
      "holds this recovery's copy beside kept entries (.lifeboat-aside-20261204T000000Z); engine.delta: true",
    );
    // Nothing stopped: the copy still answers at p2.
    expect(await rowsOf(runbook)).toEqual(range(1, 300));
    rmdirSync(path.join(dir, '.lifeboat-aside-20261204T000000Z'));
    const inode = statSync(dir).ino;
    const again = await restoreAndReplay(runbook, 'dt-delta', 'r2', { name: 'p1' });
    expect(statSync(dir).ino).toBe(inode);
    expect(again.restored.movedAside).toBeUndefined();
    expect(aside()).toEqual([]);
    expect(await rowsOf(runbook)).toEqual(range(1, 200));

    // Promoted: the new primary, on timeline 2, archiving into the stanza.
    await promoteRestored(runbook, { workflowId: 'dt-delta' });
    const copy = await restoredSession(cleanups, runbook, 'postgres');
    expect(
      (await copy.query<{ tli: number }>('select timeline_id as tli from pg_control_checkpoint()')).rows[0]!.tli,
    ).toBe(2);
    await copy.query('insert into t select generate_series(1001, 1050)');
    await copy.query(`select pg_create_restore_point('p3')`);
    await copy.query('insert into t select generate_series(2001, 2050)');
    const { lsn } = (await copy.query<{ lsn: string }>('select pg_switch_wal() as lsn')).rows[0]!;
    const segment = (await copy.query<{ f: string }>('select pg_walfile_name($1) as f', [lsn])).rows[0]!.f;
    expect(segment.startsWith('00000002')).toBe(true);
    // Held until the copy's archiver has pushed the segment holding p3 (pg_stat_archiver), not for a time.
    await waitFor(
      `${segment} archived by the promoted copy`,
      async () => {
        const a = await copy.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
        return a.rows[0]!.last !== null && a.rows[0]!.last >= segment ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const wal = await r.engine.walFiles();
    expect(wal.files).toContain('00000002.history');
    expect(wal.files).toContain(segment);
    const info = JSON.parse(await s.run(['info', '--output=json'])) as Array<{
      archive: Array<{ max: string }>;
    }>;
    expect(info[0]!.archive[0]!.max >= segment).toBe(true);
    expect(info[0]!.archive[0]!.max.startsWith('00000002')).toBe(true);

    // A second recovery, elsewhere, from the same timeline-1 backup to p3 on timeline 2.
    const second = await r.another({ name: 'dtsecond' });
    const secondRun = await restoreAndReplay(second, 'dt-second', 'r1', { name: 'p3' });
    expect(secondRun.replayed.paused).toBe(true);
    // Paused on timeline 2 before any restartpoint there: the timeline replay is on, not the last
    // restartpoint's, which pg_control_checkpoint gave (1 here when measured; replay-wal reported 1 then).
    expect(secondRun.replayed.timeline).toBe(2);
    // Rows 1001..1050 were written only on timeline 2: replay followed the history file the promoted copy archived.
    expect(await rowsOf(second)).toEqual([...range(1, 200), ...range(1001, 1050)]);
    expect(existsSync(path.join(second.restore.dataDir, 'PG_VERSION'))).toBe(true);

    // The old primary, still on timeline 1, backed up after the fork: that backup cannot follow timeline 2.
    const late = await r.engine.takeBackup({ type: 'full' });
    expect(late.timeline).toBe(1);
    const third = await r.another({ name: 'dtthird' });
    // Refused by preflight, before any fence, and again by the restore.
    const byPreflight = await preflightOnEngine(third, {
      runbook: third.name,
      target: { latest: true },
      mode: 'side-by-side',
      dryRun: false,
      backupId: late.backupId,
    }).catch((e: unknown) => e);
    expect(isLifeboatError(byPreflight) && byPreflight.code).toBe('TARGET_UNREACHABLE');
    const refused = await restoreWithEngine(
      third,
      { runbook: third.name, backupId: late.backupId, mode: 'side-by-side', workflowId: 'dt-third', runId: 'r1' },
      noProgress,
    ).catch((e: unknown) => e);
    expect(isLifeboatError(refused) && refused.code).toBe('TARGET_UNREACHABLE');
    if (isLifeboatError(refused)) {
      expect(refused.what).toMatch(
        new RegExp(
          `^backup ${late.backupId} \\(timeline 1\\) cannot reach the stanza's newest timeline 2: timeline 2 forked from timeline 1 at [0-9A-F]+/[0-9A-F]+, before the backup started`,
        ),
      );
      expect(refused.hints.join('\n')).toContain(`restore --set=${late.backupId} --target-timeline=current`);
    }
    expect(existsSync(third.restore.dataDir)).toBe(false);
  });
});
