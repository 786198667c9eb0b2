// Corrupt WAL during replay-wal (issue 10, point 4): an archived segment whose
// bytes no longer match its sha256, or that PostgreSQL cannot decode, must end
// the first attempt of replay-wal as WAL_CHECKSUM_MISMATCH, non-retryable,
// naming the segment on the first line, with nothing promoted. Before, it was
// a retryable TOOL_FAILED that Temporal retried five times onto the same bad
// segment. Real PostgreSQL 15 archiving through `lifeboat archive-push`, real
// replay through `lifeboat archive-get` (bin/lifeboat runs dist/: npm run
// build first); file:// and MinIO as s3://.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { ApplicationFailure, ActivityFunction } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { Target } from '../../src/recovery/contract';
import { readWalArchive } from '../../src/catalog/catalog';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { decodeWal, encodeWal } from '../../src/wal/compress';
import { formatLsn, parseSegmentName } from '../../src/wal/names';
import { RESTORE_FAILURE_FILE } from '../../src/wal/get-failure';
import { FOLLOWER_PID } from '../../src/wal/spool';
import { isAlive } from '../../src/wal/pid';
import { PREFETCH_SPOOL } from '../../src/restore/prefetch';
import { failureOf } from '../harness/activity';
import { runCleanups } from '../harness/cleanups';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { asPostgres, PG_BIN, postgresTempDir, switchAndWaitArchived, clearRestoredCopies } from '../harness/postgres';
import { useS3Env } from '../harness/services';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The LSN where a 16 MiB segment begins. */
const segmentStart = (name: string) => formatLsn(parseSegmentName(name).segno * 16n * 1024n * 1024n);

interface Fixture {
  tc: TestCluster;
  runbook: Runbook;
  repo: Repository;
  backup: BackupMeta;
  /** The segment holding rows 101-200: after the backup, before the restore point. */
  segment: string;
  /** Its object as archived, put back after each case. */
  original: { body: Buffer; sha256: string };
}

async function fixture(kind: RepoKind): Promise<Fixture> {
  const tc = await startTestCluster({ name: `cw-${kind}`, kind, runbooksDir, host: 'cw' });
  cleanups.push(() => tc.stop());
  const runbook = await loadRunbook(tc.name);
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  const backup = await takeBaseBackup({ runbook });
  await switchAndWaitArchived(tc.pg);
  await tc.pg.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
  const segment = await switchAndWaitArchived(tc.pg);
  await tc.pg.query(`insert into t select g, 'later' from generate_series(201, 300) g`);
  await tc.pg.query(`select pg_create_restore_point('after-the-segment')`);
  await switchAndWaitArchived(tc.pg);
  await tc.pg.query(`insert into t values (1000, 'last')`);
  await switchAndWaitArchived(tc.pg);
  const repo = await openRepository(tc.repoUrl, runbook.repository);
  const stored = await repo.get(keys.wal(tc.name, segment));
  return { tc, runbook, repo, backup, segment, original: { body: stored!.body, sha256: stored!.info.sha256! } };
}

/** Runs an activity once, as its first attempt, in its own activity context. */
async function firstAttempt<P extends unknown[], R>(fn: ActivityFunction<P, R>, ...args: P): Promise<R> {
  return new MockActivityEnvironment({ attempt: 1 }).run<P, R, ActivityFunction<P, R>>(fn, ...args);
}

/** Nothing promoted: the postmaster is down and the copy is still in archive recovery on timeline 1, no new history archived. */
async function expectNotPromoted(f: Fixture): Promise<void> {
  const dataDir = f.runbook.restore.dataDir;
  await expect(asPostgres(`${PG_BIN}/pg_ctl`, ['status', '-D', dataDir])).rejects.toMatchObject({ code: 3 });
  const control = await asPostgres(`${PG_BIN}/pg_controldata`, [dataDir]);
  expect(control).toMatch(/Database cluster state:\s+in archive recovery/);
  expect(control).toMatch(/Latest checkpoint's TimeLineID:\s+1\n/);
  expect(Object.keys((await readWalArchive(f.repo, f.tc.name)).histories)).toEqual([]);
}

async function restoreAndReplay(
  f: Fixture,
  workflowId: string,
  target: Target = { name: 'after-the-segment' },
): Promise<{ failure: ApplicationFailure; seconds: number }> {
  await firstAttempt(restoreBaseBackup, {
    runbook: f.tc.name,
    backupId: f.backup.backupId,
    mode: 'side-by-side',
    workflowId,
    runId: `${workflowId}-run`,
  });
  const started = Date.now();
  const failure = await failureOf(
    firstAttempt(replayWal, { runbook: f.tc.name, target, workflowId, runId: `${workflowId}-run` }),
  );
  return { failure, seconds: (Date.now() - started) / 1000 };
}

describe.each(['file', 's3'] as const)('replay-wal over a corrupt segment in a %s:// repository', (kind) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(kind);
  });
  afterEach(async () => {
    if (!f) return;
    await clearRestoredCopies(f.runbook.restore.dataDir);
    await f.repo.put(keys.wal(f.tc.name, f.segment), f.original.body, { sha256: f.original.sha256 });
  });

  it('fails the first attempt with WAL_CHECKSUM_MISMATCH naming the segment, not retryable, and promotes nothing, when its bytes no longer match the sha256', async () => {
    // Valid zstd, wrong content, the recorded sha256 kept: only the checksum can tell.
    const wrong = Buffer.alloc(16 * 1024 * 1024, 7);
    await f.repo.put(keys.wal(f.tc.name, f.segment), await encodeWal(f.segment, wrong), { sha256: f.original.sha256 });
    const { failure, seconds } = await restoreAndReplay(f, `wf-corrupt-${kind}`);
    console.log(
      `corrupt-wal (${kind}): replay-wal failed after ${seconds.toFixed(1)} s, first attempt, ${failure.type}`,
    );

    const dataDir = f.runbook.restore.dataDir;
    const object = `${f.tc.name}/wal/${f.segment}.zst`;
    expect(failure.type).toBe('WAL_CHECKSUM_MISMATCH');
    expect(failure.nonRetryable).toBe(true);
    const segStart = segmentStart(f.segment);
    const lines = failure.message.split('\n');
    expect(lines[0]).toBe(
      `replay of ${f.tc.name} towards restore point "after-the-segment" stopped at WAL segment ${f.segment}: the archived copy is corrupt ` +
        `(${f.segment} in ${f.repo.url} (cluster ${f.tc.name}, object ${object}) does not match its checksum: recorded sha256 ${f.original.sha256}, content sha256 ${sha(wrong)})`,
    );
    expect(lines.slice(1, 3)).toEqual([
      `HINT: the damaged object is ${object} in ${f.repo.url}; recovery cannot replay past it with this archive, and a retry of replay-wal as it is fails the same way`,
      `HINT: if the primary still has ${f.segment} in its pg_wal, compare its sha256 with the one recorded in the repository; a good copy can replace the damaged object (move that aside first), then retry replay-wal`,
    ]);
    expect(lines[3]).toMatch(
      new RegExp(
        `^HINT: otherwise choose a target before LSN ${segStart}, where ${f.segment} begins( \\(replay had reached LSN [0-9A-F]+/[0-9A-F]+\\))? \\(retarget\\); if base backup ${f.backup.backupId} itself needs ${f.segment} to become consistent, recover from another backup$`,
      ),
    );
    expect(lines.slice(4)).toEqual([
      `HINT: nothing was promoted: PostgreSQL in ${dataDir} stopped in archive recovery before applying ${f.segment} (server log: ${dataDir}.lifeboat-postgres.log)`,
    ]);
    expect(existsSync(path.join(dataDir, RESTORE_FAILURE_FILE))).toBe(true);
    // Its WAL prefetcher was started before the postmaster, and ended with the replay: nothing asks for WAL any more.
    const pidFile = path.join(dataDir, PREFETCH_SPOOL, FOLLOWER_PID);
    const follower = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
    expect(isAlive(follower)).toBe(false);
    await expectNotPromoted(f);
  });

  it('fails the same way towards the end of the archive, where PostgreSQL replays in standby mode', async () => {
    await f.repo.put(keys.wal(f.tc.name, f.segment), await encodeWal(f.segment, Buffer.alloc(16 * 1024 * 1024, 9)), {
      sha256: f.original.sha256,
    });
    const { failure } = await restoreAndReplay(f, `wf-latest-${kind}`, { latest: true });
    expect(failure.type).toBe('WAL_CHECKSUM_MISMATCH');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message.split('\n')[0]).toMatch(
      new RegExp(
        `^replay of ${f.tc.name} towards the end of the archive stopped at WAL segment ${f.segment}: the archived copy is corrupt \\(${f.segment} in `,
      ),
    );
    await expectNotPromoted(f);
  });

  it('fails with WAL_CHECKSUM_MISMATCH naming the segment when it matches its recorded sha256 but PostgreSQL cannot decode it, and the archive goes on past it', async () => {
    // Damaged before it was archived: the page magic of its first page zeroed, the checksum recorded over the damage.
    const content = Buffer.from(await decodeWal(f.segment, f.original.body));
    content.writeUInt16LE(0, 0);
    await f.repo.put(keys.wal(f.tc.name, f.segment), await encodeWal(f.segment, content), { sha256: sha(content) });
    const { failure, seconds } = await restoreAndReplay(f, `wf-undecodable-${kind}`);
    console.log(
      `corrupt-wal (${kind}, undecodable): replay-wal failed after ${seconds.toFixed(1)} s, first attempt, ${failure.type}`,
    );

    const dataDir = f.runbook.restore.dataDir;
    const { files } = await readWalArchive(f.repo, f.tc.name);
    const newest = files
      .map((x) => x.name)
      .filter((n) => /^[0-9A-F]{24}$/.test(n))
      .sort()
      .pop()!;
    expect(failure.type).toBe('WAL_CHECKSUM_MISMATCH');
    expect(failure.nonRetryable).toBe(true);
    const lines = failure.message.split('\n');
    expect(lines[0]).toBe(
      `replay of ${f.tc.name} towards restore point "after-the-segment" stopped at WAL segment ${f.segment}: PostgreSQL cannot decode it (invalid magic number 0000 in log segment ${f.segment}, offset 0), yet the archive goes on to ${newest}`,
    );
    expect(lines.slice(1)).toEqual([
      `HINT: the archived ${f.segment} in ${f.repo.url} is damaged although it matches its recorded checksum: it was most likely damaged before it was archived; a retry of replay-wal as it is stops at the same record`,
      `HINT: if the primary still has ${f.segment} in its pg_wal, compare it with the archived copy (pg_waldump shows where they differ); a good copy can replace the damaged object (move that aside first), then retry replay-wal`,
      `HINT: otherwise choose a target before LSN ${segmentStart(f.segment)} (retarget), or recover from another backup`,
      `HINT: nothing was promoted: PostgreSQL in ${dataDir} has stopped, still in archive recovery (server log: ${dataDir}.lifeboat-postgres.log)`,
    ]);
    await expectNotPromoted(f);
  });
});
