// The restore data directory on its worst night (issue 10): two restores of
// two recoveries racing for one directory in one worker, a data directory on
// a small volume that fills up (at its mount point and below it), grown and
// retried, a mount point holding an earlier replayed copy, and the room check
// that refuses early naming the kept copies. Real PostgreSQL 15, a real
// file:// repository, real tmpfs mounts (the tests run as root); each
// activity runs inside MockActivityEnvironment.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { activity } from '../harness/activity';
import { runCleanups } from '../harness/cleanups';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { RestoreInput, RestoreProgress } from '../../src/recovery/contract';
import { loadRunbook } from '../../src/runbook/load';
import { checkRestoreSite, replayWal, restoreBaseBackup, stopRestored } from '../../activities/restore';
import { teardownDrill } from '../../activities/drill';
import { movedAsideNote } from '../../workflows/recovery/restore-summary';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let tc: TestCluster;
let backup: BackupMeta;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  tc = await startTestCluster({ name: 'rdd', kind: 'file', runbooksDir, host: 'rdd' });
  cleanups.push(() => tc.stop());
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  backup = await takeBaseBackup({ runbook: await loadRunbook(tc.name) });
  await tc.pg.query(`insert into t select g, 'after backup' from generate_series(101, 150) g`);
  await tc.pg.query(`select pg_create_restore_point('rp1')`);
  await tc.pg.query(`insert into t values (1000, 'after rp1')`);
  await switchAndWaitArchived(tc.pg);
}, 180_000);

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

const input = (runbook: string, workflowId: string): RestoreInput => ({
  runbook,
  backupId: backup.backupId,
  mode: 'side-by-side',
  workflowId,
  runId: `${workflowId}-run`,
});

async function pgCtlStop(dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, 'postmaster.pid')))
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => '');
}

/** Rows of t in the restored copy on `port`. */
async function rows(port: number): Promise<{ n: number; max: number }> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query<{ n: number; max: number }>('select count(*)::int as n, max(id) as max from t')).rows[0]!;
  } finally {
    await c.end();
  }
}

/**
 * A runbook of the same cluster whose restore.dataDir is on a tmpfs of
 * `sizeMb`: the mount point itself ('at'), or a directory below it ('below').
 */
function mountedRunbook(
  label: string,
  where: 'at' | 'below',
  sizeMb: number,
): { name: string; dataDir: string; mountDir: string; port: number } {
  const container = postgresTempDir(`mnt-${label}`);
  const mountDir = path.join(container, where === 'at' ? 'data' : 'vol');
  mkdirSync(mountDir);
  // At: the OS user's, 0700, as PostgreSQL wants its data directory. Below: root's, like a
  // volume mounted for several directories; only the data directory inside is the OS user's.
  const opts = where === 'at' ? `size=${sizeMb}m,mode=0700,uid=${uid()},gid=${gid()}` : `size=${sizeMb}m,mode=0755`;
  execFileSync('mount', ['-t', 'tmpfs', '-o', opts, `lifeboat-${label}`, mountDir]);
  const dataDir = where === 'at' ? mountDir : path.join(mountDir, 'data');
  const name = `${tc.name}-${label}`;
  const text = readFileSync(tc.runbookFile, 'utf8')
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace(/^cluster:\n/m, `cluster:\n  name: ${tc.name}\n`)
    .replace(/dataDir: \S+\/recovery,/, `dataDir: ${dataDir},`);
  writeFileSync(path.join(runbooksDir, `${name}.yaml`), text);
  const port = Number(/restore: \{[^}]*port: (\d+)/.exec(text)![1]);
  cleanups.push(async () => {
    for (const d of [
      dataDir,
      ...readdirSync(dataDir)
        .filter((e) => e.startsWith('.lifeboat-aside-'))
        .map((e) => path.join(dataDir, e)),
    ])
      await pgCtlStop(d);
    try {
      execFileSync('umount', [mountDir]);
    } catch {
      // Busy: archive-get's prefetcher may outlive its postmaster by a moment. Detach
      // now; the kernel frees the tmpfs when the last process lets go.
      execFileSync('umount', ['-l', mountDir]);
    }
    // The container and everything in it were made by this test.
    rmSync(container, { recursive: true, force: true });
  });
  return { name, dataDir, mountDir, port };
}

const uid = () => Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
const gid = () => Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
const freeOf = (p: string) => {
  const s = statfsSync(p);
  return s.bavail * s.bsize;
};
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('two restores racing for one data directory', () => {
  it('of two restore-base-backup activities started at the same instant in one worker for two recoveries, exactly one restores and the other is refused with DATA_DIR_NOT_EMPTY naming it, in every round', async () => {
    const dataDir = (await loadRunbook(tc.name)).restore.dataDir;
    const parent = path.dirname(dataDir);
    const measured: number[] = [];
    for (let round = 0; round < 12; round++) {
      const ids = [`wf-race-${round}-a`, `wf-race-${round}-b`];
      const t0 = Date.now();
      const settled = await Promise.allSettled(ids.map((id) => activity(restoreBaseBackup, input(tc.name, id))));
      measured.push(Date.now() - t0);
      const winners = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [ids[i]!] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      const loser = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
      expect(loser.reason).toMatchObject({ type: 'DATA_DIR_NOT_EMPTY', nonRetryable: true });
      // Named by the claim while the winner holds it, by the winner's marker after: either way the holder, its run and since when.
      const first = (loser.reason as Error).message.split('\n')[0]!;
      expect(first).toMatch(
        new RegExp(
          `^restore\\.dataDir ${esc(dataDir)} (is claimed by workflow ${winner} \\(run ${winner}-run\\)|is not empty and was not restored by this recovery .* restored by Lifeboat for another recovery: workflow ${winner} \\(run ${winner}-run\\))`,
        ),
      );
      expect(first).toMatch(/since \d{4}-\d\d-\d\dT/);
      // One copy, the winner's, verified; no temporary file and no claim left behind.
      expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
        workflowId: winner,
        state: 'extracted',
      });
      expect(readdirSync(dataDir).filter((e) => e.includes('.tmp'))).toEqual([]);
      expect(readdirSync(parent).filter((e) => e.startsWith(`${path.basename(dataDir)}.`))).toEqual([]);
      rmSync(dataDir, { recursive: true, force: true });
    }
    console.log(`race rounds (ms, both activities): ${measured.join(', ')}`);
  });
});

describe('two drills racing for drill.dataDir and drill.port', () => {
  it('one restores and keeps the directory and port until its teardown; the other, and any later drill, is refused naming it; after the teardown the next drill restores', async () => {
    const runbook = await loadRunbook(tc.name);
    const drillDir = runbook.drill!.dataDir;
    const drillInput = (workflowId: string): RestoreInput => ({ ...input(tc.name, workflowId), instance: 'drill' });
    const ids = ['wf-drill-a', 'wf-drill-b'];
    const settled = await Promise.allSettled(ids.map((id) => activity(restoreBaseBackup, drillInput(id))));
    const winners = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [ids[i]!] : []));
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    const claimed = new RegExp(
      `^drill\\.dataDir ${esc(drillDir)} is claimed by restore drill workflow ${winner} \\(run ${winner}-run\\), (restore activity on host \\S+ pid \\d+, )?port ${runbook.drill!.port}, since \\S+, not by workflow `,
    );
    const loser = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toMatchObject({ type: 'DATA_DIR_NOT_EMPTY', nonRetryable: true });
    expect((loser.reason as Error).message).toMatch(claimed);

    // Handed over to the drill run: a later drill is refused too while it holds (no Temporal here to say it ended).
    const later = await activity(restoreBaseBackup, drillInput('wf-drill-c')).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(later?.message).toMatch(claimed);
    expect(later?.message).toContain('HINT: the claim is released when that run ends (a drill at its teardown)');

    const { result: torn } = await activity(teardownDrill, { runbook: tc.name, workflowId: winner });
    expect(torn).toMatchObject({ removed: drillDir });
    expect(existsSync(`${drillDir}.lifeboat-claim`)).toBe(false);
    const { result: next } = await activity(restoreBaseBackup, drillInput('wf-drill-c'));
    expect(next.dataDir).toBe(drillDir);
    await activity(teardownDrill, { runbook: tc.name, workflowId: 'wf-drill-c' });
    expect(readdirSync(path.dirname(drillDir)).filter((e) => e.startsWith(path.basename(drillDir)))).toEqual([]);
  });
});

for (const where of ['at', 'below'] as const) {
  describe(`restore.dataDir ${where} the mount point of a small volume`, () => {
    it('fails with DISK_FULL naming the path, the bytes needed and free; grown, a retry of the same restore removes its own partial copy and succeeds verified', async () => {
      const m = mountedRunbook(`full-${where}`, where, 8);
      const wf = `wf-full-${where}`;
      const t0 = Date.now();
      const err = await activity(restoreBaseBackup, input(m.name, wf)).then(
        () => undefined,
        (e: { type: string; nonRetryable: boolean; message: string }) => e,
      );
      const failedMs = Date.now() - t0;
      expect(err).toMatchObject({ type: 'DISK_FULL', nonRetryable: true });
      const lines = err!.message.split('\n');
      const said = new RegExp(
        `^no space left on device at ${esc(m.dataDir)} while extracting backup ${backup.backupId} into restore\\.dataDir ${esc(m.dataDir)}: the file system of ${esc(m.dataDir)} has (\\d+) bytes \\(.+\\) free, the restore needs ${backup.sizeBytes} bytes \\(.+ MiB\\) \\(tar ran out of space .*No space left on device`,
      ).exec(lines[0]!);
      expect(said, lines[0]).not.toBeNull();
      // Free as measured right after tar failed: the volume's last blocks, fewer than the backup needs.
      expect(Number(said![1])).toBeLessThan(backup.sizeBytes);
      expect(Number(said![1])).toBeLessThanOrEqual(freeOf(m.dataDir));
      expect(lines.slice(1)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^HINT: free or grow the volume of ${esc(m.dataDir)} until at least .+ MiB are free, then retry restore-base-backup \\(lifeboat retry ${wf} restore-base-backup --as <you>\\); retrying onto the same full volume fails the same way, so it is not retried automatically$`,
          ),
        ),
        `HINT: the partial copy this run left in ${m.dataDir} holds only bytes from the repository: the retry removes it and extracts again`,
        'HINT: no copies moved aside by Lifeboat are on that file system',
      ]);

      // The operator grows the volume; the step is retried.
      execFileSync('mount', ['-o', 'remount,size=256m', m.mountDir]);
      const t1 = Date.now();
      const { result, beats } = await activity(restoreBaseBackup, input(m.name, wf));
      console.log(
        `full volume ${where} the mount point: DISK_FULL after ${failedMs} ms; retry after growing it restored in ${Date.now() - t1} ms`,
      );
      expect(result).toMatchObject({ dataDir: m.dataDir, bytes: backup.sizeBytes });
      expect(result.movedAside).toBeUndefined();
      expect(result.removedPartial).toBe(true);
      expect(movedAsideNote(result)).toBe(
        "; this run's interrupted extraction was removed (only bytes from the repository, extracted again)",
      );
      expect((beats as RestoreProgress[]).some((b) => b.phase === 'verifying')).toBe(true);
      expect(readdirSync(m.dataDir).filter((e) => e.startsWith('.lifeboat-aside-'))).toEqual([]);
      expect(JSON.parse(readFileSync(path.join(m.dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
        workflowId: wf,
        state: 'extracted',
      });
    });
  });
}

describe("a mount point holding this recovery's earlier, replayed copy", () => {
  it('restoring again moves its contents into a dated .lifeboat-aside subdirectory (never renaming the mount point); verify and replay tolerate it; the room check names it', async () => {
    const m = mountedRunbook('aside-at', 'at', 256);
    const wf = 'wf-aside';
    await activity(restoreBaseBackup, input(m.name, wf));
    await activity(replayWal, { runbook: m.name, target: { name: 'rp1' }, workflowId: wf, runId: `${wf}-run` });
    expect(await rows(m.port)).toEqual({ n: 150, max: 150 });

    // A retarget to an earlier point restores again: the replayed copy is evidence, kept.
    const { result } = await activity(restoreBaseBackup, input(m.name, wf));
    expect(result.movedAside).toMatch(new RegExp(`^${esc(m.dataDir)}/\\.lifeboat-aside-\\d{8}T\\d{6}Z$`));
    const aside = result.movedAside!;
    expect(result.removedPartial).toBeUndefined();
    // What `lifeboat status` and the evidence show for the step.
    expect(movedAsideNote(result)).toBe(
      `; old directory (a mount point, which cannot be renamed) moved into ${aside}, inside the data directory and on its volume: move it off or remove it once no longer needed (a base backup of this copy would include it)`,
    );
    expect(readFileSync('/proc/self/mounts', 'utf8')).toContain(` ${m.dataDir} tmpfs `);
    expect(existsSync(path.join(aside, 'backup_label.old'))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(aside, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      workflowId: wf,
      state: 'replaying',
    });
    expect(existsSync(path.join(m.dataDir, 'backup_label'))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(m.dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      state: 'extracted',
      movedAside: aside,
    });

    // PostgreSQL starts and replays with the kept copy inside its data directory.
    await activity(replayWal, { runbook: m.name, target: { name: 'rp1' }, workflowId: wf, runId: `${wf}-run` });
    expect(await rows(m.port)).toEqual({ n: 150, max: 150 });
    await activity(stopRestored, { runbook: m.name, workflowId: wf });

    // The room check counts the kept copy as the operator's to remove, not as free space.
    const { result: ok } = await activity(checkRestoreSite, {
      runbook: m.name,
      backupId: backup.backupId,
      backupBytes: 1 << 20,
      walSegments: 1,
    });
    expect(ok).toMatchObject({ dataDir: m.dataDir, measured: m.dataDir, neededBytes: (1 << 20) + 16 * 1024 * 1024 });
    expect(ok.kept).toEqual([{ path: aside, bytes: expect.any(Number) as number }]);
    expect(ok.kept[0]!.bytes).toBeGreaterThan(backup.sizeBytes / 2);
    const free = freeOf(m.dataDir);
    const err = await activity(checkRestoreSite, {
      runbook: m.name,
      backupId: backup.backupId,
      backupBytes: free,
      walSegments: 2,
    }).then(
      () => undefined,
      (e: { type: string; nonRetryable: boolean; message: string }) => e,
    );
    expect(err).toMatchObject({ type: 'DISK_FULL', nonRetryable: true });
    const lines = err!.message.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^restore\\.dataDir ${esc(m.dataDir)} has no room for this restore: the file system of ${esc(m.dataDir)} has ${free} bytes \\(.+\\) free, the restore needs ${free + 2 * 16 * 1024 * 1024} bytes \\(.+\\) \\(backup ${backup.backupId}: .+, WAL during replay: 32\\.0 MiB\\)$`,
      ),
    );
    expect(lines[1]).toMatch(
      new RegExp(
        `^HINT: copies moved aside by Lifeboat on that file system, .+ in all, which an operator may remove once no longer needed \\(Lifeboat never does\\): ${esc(aside)} \\(.+ MiB\\)$`,
      ),
    );
    expect(lines.slice(2)).toEqual([
      `HINT: free or grow that volume by at least 32.0 MiB, or set restore.dataDir in runbook ${m.name} to a larger volume, then start the run again`,
      'HINT: nothing was fenced, moved or written: this check only reads',
    ]);
  });
});

describe("a mount point holding someone else's files", () => {
  it('is refused with a hint that fits a mount point; once the operator moves them into a .lifeboat-aside subdirectory, the restore goes on beside it, verified', async () => {
    const m = mountedRunbook('foreign-at', 'at', 256);
    writeFileSync(path.join(m.dataDir, 'customer-data.csv'), 'id,name\n1,alice\n');
    const err = await activity(restoreBaseBackup, input(m.name, 'wf-foreign-at')).then(
      () => undefined,
      (e: { type: string; message: string }) => e,
    );
    expect(err).toMatchObject({ type: 'DATA_DIR_NOT_EMPTY' });
    expect(err!.message.split('\n')).toEqual([
      `restore.dataDir ${m.dataDir} is not empty and was not restored by this recovery (workflow wf-foreign-at): it holds 1 entry (customer-data.csv)`,
      'HINT: Lifeboat never deletes a data directory it cannot prove is its own; nothing in it was changed',
      'HINT: if it is no longer needed: it is a mount point, which cannot be renamed, so move its contents (all but lost+found) off the volume or into a subdirectory named .lifeboat-aside-<time>, which Lifeboat leaves alone and restores beside (as root or postgres); then retry the step',
      `HINT: or set restore.dataDir in runbook ${m.name} to an absent or empty directory`,
    ]);
    expect(readdirSync(m.dataDir)).toEqual(['customer-data.csv']);

    // What the hint says, done by the operator (as root: the subdirectory is not the OS user's).
    const aside = path.join(m.dataDir, '.lifeboat-aside-20261203T030000Z');
    mkdirSync(aside);
    execFileSync('mv', [path.join(m.dataDir, 'customer-data.csv'), aside]);
    const { result } = await activity(restoreBaseBackup, input(m.name, 'wf-foreign-at'));
    expect(result.movedAside).toBeUndefined();
    expect(readFileSync(path.join(aside, 'customer-data.csv'), 'utf8')).toBe('id,name\n1,alice\n');
    expect(existsSync(path.join(m.dataDir, 'backup_label'))).toBe(true);
  });
});

describe('below the mount point, an earlier replayed copy', () => {
  it('is moved aside as a sibling on the same volume, and the room check names it with its size', async () => {
    const m = mountedRunbook('aside-below', 'below', 256);
    const wf = 'wf-sibling';
    await activity(restoreBaseBackup, input(m.name, wf));
    await activity(replayWal, { runbook: m.name, target: { name: 'rp1' }, workflowId: wf, runId: `${wf}-run` });
    const { result } = await activity(restoreBaseBackup, input(m.name, wf));
    expect(result.movedAside).toMatch(new RegExp(`^${esc(m.dataDir)}\\.lifeboat-\\d{8}T\\d{6}Z$`));
    const err = await activity(checkRestoreSite, {
      runbook: m.name,
      backupId: backup.backupId,
      backupBytes: freeOf(m.mountDir) + 1,
      walSegments: 0,
    }).then(
      () => undefined,
      (e: { type: string; message: string }) => e,
    );
    expect(err).toMatchObject({ type: 'DISK_FULL' });
    expect(err!.message.split('\n')[1]).toMatch(new RegExp(`: ${esc(result.movedAside!)} \\(\\d+\\.\\d MiB\\)$`));
  });
});
