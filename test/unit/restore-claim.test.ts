// The claim of a restore directory (src/restore/claim.ts), the per-writer
// temporary names of the marker (src/restore/marker.ts), and the sweep of
// pg_verifybackup's temporary directories (src/restore/extract.ts): plain
// files in a temporary directory, no PostgreSQL needed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  claimPath,
  readClaim,
  releaseClaimOf,
  takeClaim,
  type Claim,
  type ClaimRequest,
} from '../../src/restore/claim';
import { sweepDeadManifestDirs } from '../../src/restore/extract';
import { MARKER_FILE, readMarker, writeMarker, type RestoreMarker } from '../../src/restore/marker';

let dir: string;
let dataDir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-claim-'));
  dataDir = path.join(dir, 'pg', '15', 'recovery');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const req = (workflowId: string, over: Partial<ClaimRequest> = {}): ClaimRequest => ({
  dataDir,
  workflowId,
  runId: `${workflowId}-run`,
  instance: 'restore',
  field: 'restore.dataDir',
  ...over,
});

/** The pid of a process that has exited: provably nobody's. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

function plant(c: Partial<Claim>): void {
  const claim: Claim = {
    workflowId: 'wf-old',
    runId: 'wf-old-run',
    instance: 'restore',
    since: '2026-12-01T03:00:00.000Z',
    host: os.hostname(),
    nonce: 'planted',
    ...c,
  };
  mkdirSync(path.dirname(dataDir), { recursive: true });
  writeFileSync(claimPath(dataDir), JSON.stringify(claim));
}

describe('the claim of a restore directory', () => {
  it('of many takers at the same instant (its parent not made yet) exactly one holds it; every other one is refused naming the holder, and nothing is left behind', async () => {
    for (let round = 0; round < 25; round++) {
      const ids = Array.from({ length: 6 }, (_, i) => `wf-${round}-${i}`);
      const settled = await Promise.allSettled(ids.map((id) => takeClaim(req(id))));
      const won = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      expect(won).toHaveLength(1);
      const holder = won[0]!.claim;
      settled.forEach((s, i) => {
        if (s.status === 'fulfilled') return;
        expect(s.reason).toMatchObject({ code: 'DATA_DIR_NOT_EMPTY' });
        expect((s.reason as Error).message.split('\n')[0]).toBe(
          `restore.dataDir ${dataDir} is claimed by workflow ${holder.workflowId} (run ${holder.runId}), restore activity on host ${os.hostname()} pid ${process.pid}, since ${holder.since}, not by workflow ${ids[i]}`,
        );
      });
      expect(await readClaim(dataDir)).toEqual(holder);
      await won[0]!.release();
      expect(readdirSync(path.dirname(dataDir))).toEqual([]);
    }
  });

  it('is taken over by the same workflow (a retry), and by anyone once its process is gone', async () => {
    plant({ workflowId: 'wf-a', runId: 'wf-a-run', pid: process.pid });
    const retry = await takeClaim(req('wf-a'));
    expect(retry.tookOver).toMatchObject({ workflowId: 'wf-a', nonce: 'planted' });
    await retry.release();

    plant({ pid: deadPid() });
    const next = await takeClaim(req('wf-b'));
    expect(next.tookOver).toMatchObject({ workflowId: 'wf-old' });
    expect(await readClaim(dataDir)).toMatchObject({ workflowId: 'wf-b', pid: process.pid });
    await next.release();
    expect(existsSync(claimPath(dataDir))).toBe(false);
  });

  it("removes the temporary files of claim writers that died before linking theirs, and keeps a live writer's", async () => {
    const dead = `${claimPath(dataDir)}.${deadPid()}.0123456789ab.tmp`;
    const live = `${claimPath(dataDir)}.${process.pid}.ba9876543210.tmp`;
    mkdirSync(path.dirname(dataDir), { recursive: true });
    for (const f of [dead, live]) writeFileSync(f, '{}');
    const c = await takeClaim(req('wf-a'));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await c.release();
  });

  it('holds while its process lives, or on another host where a pid proves nothing', async () => {
    plant({ pid: process.pid });
    await expect(takeClaim(req('wf-b'))).rejects.toMatchObject({ code: 'DATA_DIR_NOT_EMPTY' });
    plant({ pid: deadPid(), host: 'some-other-host' });
    const err = await takeClaim(req('wf-b')).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(
      `is claimed by workflow wf-old (run wf-old-run), restore activity on host some-other-host pid`,
    );
    expect(readFileSync(claimPath(dataDir), 'utf8')).toContain('some-other-host');
    // ... until Temporal says that run is over.
    await expect(takeClaim(req('wf-b', { holderRunning: async () => undefined }))).rejects.toMatchObject({
      code: 'DATA_DIR_NOT_EMPTY',
    });
    const b = await takeClaim(req('wf-b', { holderRunning: async () => false }));
    expect(b.tookOver).toMatchObject({ host: 'some-other-host' });
    await b.release();
  });

  it('handed over, holds until released or until Temporal says its run is over', async () => {
    const a = await takeClaim(req('wf-a', { instance: 'drill', port: 5499, field: 'drill.dataDir' }));
    await a.handOver();
    const c = (await readClaim(dataDir))!;
    expect(c).toMatchObject({ workflowId: 'wf-a', port: 5499, instance: 'drill' });
    expect(c.pid).toBeUndefined();
    // No answer from Temporal: held.
    await expect(
      takeClaim(req('wf-b', { field: 'drill.dataDir', holderRunning: async () => undefined })),
    ).rejects.toMatchObject({
      code: 'DATA_DIR_NOT_EMPTY',
      message: expect.stringContaining(
        `drill.dataDir ${dataDir} is claimed by restore drill workflow wf-a (run wf-a-run), port 5499, since ${c.since}, not by workflow wf-b`,
      ) as string,
    });
    await expect(takeClaim(req('wf-b', { holderRunning: async () => true }))).rejects.toMatchObject({
      code: 'DATA_DIR_NOT_EMPTY',
    });
    const b = await takeClaim(req('wf-b', { holderRunning: async (h) => h.workflowId !== 'wf-a' }));
    expect(b.tookOver?.workflowId).toBe('wf-a');
    expect(await releaseClaimOf(dataDir, 'wf-a')).toBe(false);
    expect(await releaseClaimOf(dataDir, 'wf-b')).toBe(true);
    expect(readdirSync(path.dirname(dataDir))).toEqual([]);
  });
});

describe('the marker of a restored directory', () => {
  it('is written by many writers at once without an error or a leftover temporary file, and reads back whole', async () => {
    mkdirSync(dataDir, { recursive: true });
    const marker = (i: number): RestoreMarker => ({
      workflowId: `wf-${i}`,
      runId: 'r',
      backupId: 'b',
      state: 'extracting',
      at: new Date().toISOString(),
      mode: 'side-by-side',
      backup: { startLsn: '0/2000028', timeline: 1, walSegmentSize: 16777216 },
    });
    await Promise.all(Array.from({ length: 40 }, (_, i) => writeMarker(dataDir, marker(i), os.userInfo().username)));
    expect(readdirSync(dataDir)).toEqual([MARKER_FILE]);
    expect((await readMarker(dataDir))?.workflowId).toMatch(/^wf-\d+$/);
  });
});

describe("pg_verifybackup's temporary manifest directories", () => {
  it('are removed when their process is gone, kept while it lives, and left alone without a pid in their name', async () => {
    const dead = path.join(dir, `lifeboat-manifest-${deadPid()}-AbC123`);
    const live = path.join(dir, `lifeboat-manifest-${process.pid}-XyZ789`);
    const old = path.join(dir, 'lifeboat-manifest-Qw3rty');
    for (const d of [dead, live, old]) {
      mkdirSync(d);
      writeFileSync(path.join(d, 'backup_manifest'), '{}');
    }
    expect(await sweepDeadManifestDirs(dir)).toEqual([dead]);
    expect(readdirSync(dir).sort()).toEqual([path.basename(old), path.basename(live)].sort());
  });
});
