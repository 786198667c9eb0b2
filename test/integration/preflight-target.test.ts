// Preflight refuses a recovery target the archive can never reach (issue 11,
// point 4) before anything is fenced: a time after the newest archived commit,
// a restore point name the archived WAL does not hold, an LSN past its end.
// And it does not refuse a target whose WAL is still only in the primary's
// pg_wal: it switches WAL, waits for the archiver, and looks again.
// Real PostgreSQL 15 archiving through `lifeboat archive-push` into a file://
// repository; the preflight activity runs inside MockActivityEnvironment.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { preflight } from '../../activities/recovery';
import { isComplete, readCatalog, readWalArchive } from '../../src/catalog/catalog';
import { checkTargetReach } from '../../src/recovery/reach';
import { promoteRestored, replayWal, restoreBaseBackup } from '../../activities/restore';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { PreflightInput, PreflightResult, Target } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { loadRunbook } from '../../src/runbook/load';
import { fetchWalFile } from '../../src/wal/get';
import { formatLsn, parseLsn, segmentName } from '../../src/wal/names';
import { PG_BIN, postgresTempDir, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let tc: TestCluster;
/** The same cluster, as a role that may not run pg_switch_wal(). */
let noPriv: string;
let backupId: string;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  tc = await startTestCluster({ name: `pft-${process.pid}`, kind: 'file', runbooksDir, host: `pft${process.pid}` });
  cleanups.push(() => tc.stop());
  await tc.pg.query('create table t (id int primary key, v text)');
  backupId = (await takeBaseBackup({ runbook: await loadRunbook(tc.name) })).backupId;
  await tc.pg.query(`insert into t values (1, 'after backup')`);
  await tc.pg.query(`select pg_create_restore_point('before-migration')`);
  await tc.pg.query(`insert into t values (2, 'after before-migration')`);
  await switchAndWaitArchived(tc.pg);
  await tc.pg.query('create role lb_nopriv login');
  noPriv = `${tc.name}-nopriv`;
  const yaml = readFileSync(tc.runbookFile, 'utf8')
    .replace(`name: ${tc.name}\ncluster:\n`, `name: ${noPriv}\ncluster:\n  name: ${tc.name}\n`)
    .replace('user: postgres', 'user: lb_nopriv');
  writeFileSync(path.join(runbooksDir, `${noPriv}.yaml`), yaml);
}, 180_000);

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

function run(target: Target, runbook = tc.name): Promise<PreflightResult> {
  const input: PreflightInput = { runbook, target, mode: 'side-by-side', dryRun: false };
  return new MockActivityEnvironment().run(preflight, input);
}

async function refusal(target: Target, runbook?: string): Promise<ApplicationFailure> {
  const err = await run(target, runbook).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe('TARGET_UNREACHABLE');
  expect(f.nonRetryable).toBe(true);
  return f;
}

/** The segment the primary inserts into now (past any record just written), and whether the repository has it. */
async function currentSegment(): Promise<{ segment: string; archived: boolean }> {
  const [row] = await tc.pg.query<{ w: string }>('select pg_walfile_name(pg_current_wal_insert_lsn()) as w');
  const repo = await openRepository(tc.repoUrl, {});
  return { segment: row!.w, archived: (await repo.head(keys.wal(tc.name, row!.w))) !== undefined };
}

/** Nothing a recovery would touch: the restore directory was never made. */
function untouched(): void {
  expect(existsSync(path.join(tc.stateDir, 'recovery'))).toBe(false);
}

describe('preflight refuses targets the archive cannot reach', () => {
  it('refuses a time in the future, naming the newest archived commit and the flag to use', async () => {
    const f = await refusal({ time: '2030-01-01T00:00:00Z' });
    console.log(f.message);
    expect(f.message).toMatch(
      new RegExp(
        `^time 2030-01-01T00:00:00Z is after the newest commit in the WAL archive of cluster ${tc.name} \\(timeline 1, from backup \\S+'s start [0-9A-F]{24} to [0-9A-F]{24}\\): ` +
          `\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(in [0-9A-F]{24}\\); replay would end before the target\n`,
      ),
    );
    expect(f.message).toContain(
      `HINT: recovery_target_time stops at the first commit after the target, so only a time before `,
    );
    expect(f.message).toMatch(new RegExp(`lifeboat recover --runbook ${tc.name} --to-time \\S+Z \\(or earlier\\)`));
    expect(f.message).toContain(
      `HINT: to replay everything the archive holds: lifeboat recover --runbook ${tc.name} --to-latest`,
    );
    // The primary answered: it was made to switch first, so the refusal is about the archive as of now.
    expect(f.message).toMatch(/HINT: the primary switched WAL and [0-9A-F]{24} was archived \(after \d+ ms\)/);
    expect(f.message).toMatch(/HINT: nothing was touched: no gate, no traffic, no data directory$/);
    untouched();
  });

  it('refuses a restore point name the archive does not hold, listing the names it does', async () => {
    const started = Date.now();
    const f = await refusal({ name: 'nosuch' });
    // Measured, not asserted: a search that finds nothing reads every segment twice (before and after the switch).
    console.log(`${Date.now() - started} ms to refuse: ${f.message}`);
    expect(f.message).toMatch(
      new RegExp(
        `^restore point "nosuch" is not in the WAL archive of cluster ${tc.name} \\(timeline 1, .*\\): it holds 1 restore point, the newest "before-migration" \\(LSN [0-9A-F]+/[0-9A-F]+\\)\n`,
      ),
    );
    expect(f.message).toContain(
      `HINT: names are exact and case-sensitive: lifeboat recover --runbook ${tc.name} --to-name 'before-migration'`,
    );
    expect(f.message).not.toContain('choose an earlier target');
    untouched();
  });

  it('refuses an LSN past the end of the archive, naming its last record', async () => {
    const [row] = await tc.pg.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    const far = formatLsn(parseLsn(row!.lsn) + 0x40000000n);
    const f = await refusal({ lsn: far });
    console.log(f.message);
    expect(f.message).toMatch(
      new RegExp(
        `^LSN ${far} is past the end of the WAL archive of cluster ${tc.name} \\(timeline 1, .*\\): its last record starts at ([0-9A-F]+/[0-9A-F]+); replay would end before the target\n`,
      ),
    );
    const last = /its last record starts at (\S+);/.exec(f.message)![1]!;
    expect(f.message).toContain(
      `HINT: choose an LSN at or before ${last}: lifeboat recover --runbook ${tc.name} --to-lsn ${last}`,
    );
    untouched();
  });

  it('says when the role may not switch WAL, and refuses on what the archive holds', async () => {
    const f = await refusal({ time: '2030-01-01T00:00:00Z' }, noPriv);
    expect(f.message).toContain(
      `HINT: the primary did not switch WAL: role lb_nopriv may not run pg_switch_wal() (permission denied), so the archive was checked as it is; ` +
        `to let preflight archive recent WAL first, as a superuser in database postgres: GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO lb_nopriv;`,
    );
  });
});

describe('preflight accepts targets the archive reaches', () => {
  it('accepts an archived restore point without switching WAL', async () => {
    const r = await run({ name: 'before-migration' });
    expect(r.warnings.join('\n')).not.toContain('switched WAL');
  });

  it('accepts a time a few seconds ago whose later commit is still only in pg_wal, after switching WAL', async () => {
    // The target lies between two commits; the later one, which recovery
    // stops at, is in a segment the primary has not archived (no
    // archive_timeout: nothing switches it but preflight).
    await tc.pg.query(`insert into t values (3, 'before the target')`);
    const [row] = await tc.pg.query<{ at: Date }>('select clock_timestamp() as at');
    const target = row!.at.toISOString();
    await tc.pg.query(`insert into t values (4, 'after the target')`);
    const before = await currentSegment();
    expect(before.archived).toBe(false);
    const r = await run({ time: target });
    const note = r.warnings.find((w) => w.includes('switched WAL'));
    console.log(`target ${target}: ${note}`);
    expect(note).toMatch(
      new RegExp(`^the primary switched WAL and ${before.segment} was archived \\(after \\d+ ms\\)$`),
    );
  });

  it('accepts a restore point just made and an LSN just written, both only in pg_wal until preflight switches', async () => {
    await tc.pg.query(`select pg_create_restore_point('just-now')`);
    expect((await currentSegment()).archived).toBe(false);
    const r = await run({ name: 'just-now' });
    expect(r.warnings.some((w) => /^the primary switched WAL and [0-9A-F]{24} was archived/.test(w))).toBe(true);

    await tc.pg.query(`insert into t values (5, 'at the LSN')`);
    const [row] = await tc.pg.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    expect((await currentSegment()).archived).toBe(false);
    const l = await run({ lsn: row!.lsn });
    expect(l.warnings.some((w) => /^the primary switched WAL and [0-9A-F]{24} was archived/.test(w))).toBe(true);
  });
});

describe('the restore point search reads only the segments archive-push counted a restore point in', () => {
  /** checkTargetReach on what the repository holds now, as preflight calls it. */
  async function reach(name: string) {
    const repo = await openRepository(tc.repoUrl, {});
    const entry = (await readCatalog(repo, tc.name)).filter(isComplete).find((e) => e.backupId === backupId)!;
    const archive = await readWalArchive(repo, tc.name);
    return checkTargetReach({
      source: { repo, cluster: tc.name },
      cluster: tc.name,
      pgBin: PG_BIN,
      runbookName: tc.name,
      backup: entry.meta,
      target: { name },
      files: archive.files.map((f) => f.name),
      histories: archive.histories,
      cache: new Map(),
    });
  }

  it('finds the first of two same-named points with segments between them skipped, and the same one in an archive without the counts', async () => {
    // Three segments of WAL without a restore point, the name, three more, the name again.
    const fill = async () => {
      for (let i = 0; i < 3; i++) {
        await tc.pg.query(
          `select pg_logical_emit_message(false, 'fill', repeat('x', 1000000)) from generate_series(1, 17)`,
        );
      }
    };
    await fill();
    const [first] = await tc.pg.query<{ l: string }>(`select pg_create_restore_point('twice')::text as l`);
    await fill();
    await tc.pg.query(`select pg_create_restore_point('twice')`);
    await switchAndWaitArchived(tc.pg);

    const r = await reach('twice');
    console.log(`indexed: ${r.reaches}`);
    expect(r.refusal).toBeUndefined();
    // pg_create_restore_point returns the record's end; the search names its start, just before.
    const found = parseLsn(r.restorePoint!.lsn);
    expect(found < parseLsn(first!.l) && parseLsn(first!.l) - found <= 160n).toBe(true);
    const m = /(\d+) segments read, (\d+) skipped: archive-push counted no restore point in them/.exec(r.reaches ?? '');
    expect(m, r.reaches).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThanOrEqual(6);

    // Every segment's count removed from its sidecar: an archive written
    // before archive-push counted. Everything is read, and the answer is the same.
    const walDir = path.join(new URL(tc.repoUrl).pathname, tc.name, 'wal');
    const sidecars = readdirSync(walDir).filter((f) => f.endsWith('.zst.sha256'));
    expect(sidecars.filter((f) => readFileSync(path.join(walDir, f), 'utf8').includes('restore-points=')).length).toBe(
      sidecars.length,
    );
    for (const f of sidecars) {
      const file = path.join(walDir, f);
      writeFileSync(file, readFileSync(file, 'utf8').split('\n')[0] + '\n');
    }
    const old = await reach('twice');
    console.log(`not indexed: ${old.reaches}`);
    expect(old.restorePoint).toEqual(r.restorePoint);
    expect(old.reaches).not.toContain('skipped');
  });
});

describe('a restore point record that crosses a segment boundary', () => {
  const SEG = 16n * 1024n * 1024n;

  /**
   * Pads the WAL with logical messages until the insert position is a few
   * bytes before a segment's end, then makes the restore point there. Every
   * step is measured, and the record is checked to start before the boundary
   * and end after it; a record another backend slipped in makes it try again
   * in the next segment.
   */
  async function straddlingRestorePoint(name: string): Promise<{ before: string; after: string }> {
    const c = new Client(tc.pg.connection);
    await c.connect();
    try {
      const ins = async () =>
        parseLsn((await c.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l')).rows[0]!.l);
      const emit = (n: number) => c.query(`select pg_logical_emit_message(false, 'pad', repeat('x', $1::int))`, [n]);
      let l = await ins();
      await emit(1000);
      const overhead = Number((await ins()) - l) - 1000;
      for (let attempt = 0; attempt < 20; attempt++) {
        l = await ins();
        const boundary = (l / SEG + 1n) * SEG;
        const room = Number(boundary - l);
        if (room > 8000) {
          // Land inside the segment's last page (about 4 kB before its end); page headers add a little.
          await emit(Math.max(1, room - 4000 - overhead - Math.ceil(room / 8192) * 24));
          continue;
        }
        if (room > 96) {
          await emit(Math.max(1, room - 48 - overhead));
          continue;
        }
        if (room < 16) {
          await emit(1000);
          continue;
        }
        const end = parseLsn(
          (await c.query<{ l: string }>(`select pg_create_restore_point($1)::text as l`, [name])).rows[0]!.l,
        );
        if (end > boundary && end - l <= 160n) {
          return { before: segmentName(1, boundary / SEG - 1n), after: segmentName(1, boundary / SEG) };
        }
      }
      throw new Error(`could not place restore point ${name} across a segment boundary`);
    } finally {
      await c.end();
    }
  }

  it('is found by preflight, though pg_waldump of either segment alone does not show it', async () => {
    const { before, after } = await straddlingRestorePoint('across-the-boundary');
    await switchAndWaitArchived(tc.pg);
    // The precondition: read alone, neither segment shows the record.
    const repo = await openRepository(tc.repoUrl, {});
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-straddle-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    for (const seg of [before, after]) {
      writeFileSync(path.join(dir, seg), (await fetchWalFile(repo, tc.name, seg))!.content);
      let out = '';
      try {
        out = execFileSync(`${PG_BIN}/pg_waldump`, ['--rmgr=XLOG', path.join(dir, seg)], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        });
      } catch (err) {
        out = String((err as { stdout?: string }).stdout ?? '');
      }
      expect(out).not.toContain('RESTORE_POINT across-the-boundary');
      rmSync(path.join(dir, seg));
    }
    const r = await run({ name: 'across-the-boundary' });
    expect(r.warnings.join('\n')).not.toContain('switched WAL');
  });
});

describe('after a promotion, the timeline the target lies on', () => {
  it('checks a time on the new timeline: commits the old timeline archived after the branch point do not count; before the promoted copy archives its first segment, the restore point in the switch segment is still reached', async () => {
    // A commit on the line before the branch point, whatever the tests before this one left in the newest segments.
    await tc.pg.query(`insert into t values (99, 'before the branch')`);
    await tc.pg.query(`select pg_create_restore_point('branch-here')`);
    const [{ at } = { at: new Date(0) }] = await tc.pg.query<{ at: Date }>(
      `insert into t values (100, 'after the branch on timeline 1') returning clock_timestamp() as at`,
    );
    await tc.pg.query(`insert into t values (101, 'later on timeline 1')`);
    await switchAndWaitArchived(tc.pg);
    // Before the promotion, a time after the branch is reached on timeline 1.
    const onOne = await run({ time: at.toISOString() });
    expect(onOne.warnings.join('\n')).not.toContain('switched WAL');

    // Restore, replay to the restore point and promote: timeline 2 branches there and archives into the same repository.
    const runbook = await loadRunbook(tc.name);
    cleanups.push(() => stopRestoredCopy(runbook));
    const ids = { runbook: tc.name, workflowId: `pft-tl-${process.pid}`, runId: `pft-tl-${process.pid}-run` };
    await new MockActivityEnvironment().run(restoreBaseBackup, { ...ids, backupId, mode: 'side-by-side' as const });
    await new MockActivityEnvironment().run(replayWal, { ...ids, target: { name: 'branch-here' } });
    const promoted = (await new MockActivityEnvironment().run(promoteRestored, ids)) as Awaited<
      ReturnType<typeof promoteRestored>
    >;
    expect(promoted.timeline).toBe(2);
    const copy = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await copy.connect();
    try {
      const [row] = (await copy.query<{ w: string }>('select pg_walfile_name(pg_switch_wal()) as w')).rows;
      const repo = await openRepository(tc.repoUrl, {});
      await waitFor(
        `${row!.w} from the promoted copy to be archived`,
        async () => ((await repo.head(keys.wal(tc.name, row!.w))) ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(await repo.head(keys.wal(tc.name, '00000002.history'))).toBeDefined();
    } finally {
      await copy.end();
    }

    // The same time is now past the newest commit of timeline 2's line. The
    // old primary writes on (so preflight's switch closes a new segment,
    // which its archiver can no longer archive).
    await tc.pg.query(`insert into t values (102, 'timeline 1 after the promotion')`);
    const f = await refusal({ time: at.toISOString() });
    console.log(f.message);
    // Timeline 1's archiver is refused now (TIMELINE_SUPERSEDED): preflight
    // says so after PostgreSQL's three tries instead of waiting a minute.
    expect(f.message).toMatch(
      /the primary switched WAL but its archiver is failing \([0-9A-F]{24} failed \d+ times since the switch/,
    );
    expect(f.message).toMatch(
      new RegExp(
        `^time ${at.toISOString()} is after the newest commit in the WAL archive of cluster ${tc.name} \\(timeline 2, `,
      ),
    );
    // And the restore point on the line is still found.
    await run({ name: 'branch-here' });

    // The archive as it stands right after a promotion, before the promoted
    // copy has filled or switched its first segment: timeline 2's history,
    // no segment of timeline 2. Timeline 2's segments are moved out of this
    // test's own repository to make that state (and put back after).
    // PostgreSQL reads timeline 1's copy of the switch segment up to the
    // switch point, so the restore point in it is reached; what timeline 1
    // wrote after the switch (row 100's commit) is not.
    const repoRoot = tc.repoUrl.replace(/^file:\/\//, '');
    const repo = await openRepository(tc.repoUrl, {});
    const tl2 = (await repo.list(keys.walPrefix(tc.name)))
      .map((o) => o.key)
      .filter((k) => /\/00000002[0-9A-F]{16}[^/]*$/.test(k));
    expect(tl2.length).toBeGreaterThan(0);
    const held = postgresTempDir('tl2-held');
    const moves = tl2
      .flatMap((k) => [k, `${k}.sha256`])
      .filter((k) => existsSync(path.join(repoRoot, k)))
      .map((k, i) => ({ from: path.join(repoRoot, k), to: path.join(held, String(i)) }));
    for (const m of moves) renameSync(m.from, m.to);
    try {
      const found = await run({ name: 'branch-here' });
      expect(found.warnings.join('\n')).not.toContain('not found');
      const f2 = await refusal({ time: at.toISOString() });
      expect(f2.message).toContain('the primary switched WAL but its archiver is failing');
      expect(f2.message).toMatch(
        new RegExp(
          `^time ${at.toISOString()} is after the newest commit in the WAL archive of cluster ${tc.name} \\(timeline 2, `,
        ),
      );
    } finally {
      for (const m of moves) renameSync(m.to, m.from);
      rmSync(held, { recursive: true, force: true });
    }
  }, 180_000);
});
