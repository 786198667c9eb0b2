// Preflight's check of the restore site (src/restore/site-check.ts) passes
// what restore-base-backup would handle itself and refuses what it would
// refuse, with the same judgement (data-dir.ts judgeDataDir, claim.ts): real
// directories, markers and claims on disk, a real dead process for a stale claim.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { isLifeboatError } from '../../src/errors';
import type { RestoreSiteInput } from '../../src/recovery/contract';
import { claimPath } from '../../src/restore/claim';
import { MARKER_FILE } from '../../src/restore/marker';
import { checkSiteFree } from '../../src/restore/site-check';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { freePort } from '../harness/ports';

const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-site-check-'));
let runbook: Runbook;
let dataDir: string;
let drillDir: string;
const WF = 'recover-site-check-1';

beforeAll(async () => {
  const runbooksDir = path.join(root, 'runbooks');
  mkdirSync(runbooksDir);
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  writeFileSync(
    path.join(runbooksDir, 'site.yaml'),
    demoRunbookYaml({
      name: 'site',
      pgPort: 5432,
      repoUrl: `file://${root}/repo`,
      host: 'sitehost',
      stateDir: path.join(root, 'state'),
      restorePort: await freePort(),
      drillPort: await freePort(),
    }),
  );
  runbook = await loadRunbook('site');
  dataDir = runbook.restore.dataDir;
  drillDir = runbook.drill!.dataDir;
});
// The test's own directory.
afterAll(() => rmSync(root, { recursive: true, force: true }));

function input(extra: Partial<RestoreSiteInput> = {}): RestoreSiteInput {
  return {
    runbook: 'site',
    backupId: '20261203T000000Z',
    backupBytes: 1,
    walSegments: 1,
    workflowId: WF,
    runId: 'run-now',
    ...extra,
  };
}

function marker(dir: string, m: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'PG_VERSION'), '15\n');
  writeFileSync(
    path.join(dir, MARKER_FILE),
    JSON.stringify({
      runId: 'run-before',
      backupId: '20261202T000000Z',
      state: 'replaying',
      at: '2026-12-03T00:00:00.000Z',
      mode: 'side-by-side',
      backup: { startLsn: '0/2000028', timeline: 1, walSegmentSize: 16777216 },
      ...m,
    }),
  );
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isLifeboatError(err)) throw new Error(`expected a refusal, got ${String(err)}`);
  return { code: err.code, message: err.message };
}

function reset(): void {
  for (const d of [dataDir, drillDir]) {
    rmSync(d, { recursive: true, force: true });
    rmSync(claimPath(d), { force: true });
  }
}

describe('preflight passes what the restore handles itself', () => {
  it('an absent directory, and one holding only what Lifeboat keeps (lost+found, .lifeboat-aside-*)', async () => {
    reset();
    expect(await checkSiteFree(runbook, input())).toBe(
      `restore.dataDir ${dataDir} is empty or absent; restore.port ${runbook.restore.port} is free`,
    );
    mkdirSync(path.join(dataDir, 'lost+found'), { recursive: true });
    mkdirSync(path.join(dataDir, '.lifeboat-aside-20261203T000000Z'));
    expect(await checkSiteFree(runbook, input())).toBe(
      `restore.dataDir ${dataDir} is empty or absent; restore.port ${runbook.restore.port} is free`,
    );
  });

  it("this workflow's earlier copy, never promoted (a workflow id used again): the restore moves it aside", async () => {
    reset();
    marker(dataDir, { workflowId: WF });
    expect(await checkSiteFree(runbook, input())).toBe(
      `restore.dataDir ${dataDir} holds this workflow's earlier copy, which the restore moves aside; restore.port ${runbook.restore.port} is free`,
    );
  });

  it("an earlier drill's stopped copy in drill.dataDir: the drill moves it aside", async () => {
    reset();
    marker(drillDir, { workflowId: 'drill-earlier', instance: 'drill', state: 'promoted' });
    expect(await checkSiteFree(runbook, input({ instance: 'drill', workflowId: 'drill-now' }))).toBe(
      `drill.dataDir ${drillDir} holds an earlier drill's stopped copy, which the restore moves aside; drill.port ${runbook.drill!.port} is free`,
    );
  });

  it("in place: the primary's own directory is not refused", async () => {
    reset();
    marker(dataDir, { workflowId: 'someone-else' });
    expect(await checkSiteFree(runbook, input({ mode: 'in-place' }))).toBe(
      `restore.dataDir ${dataDir}: in place, the primary's directory is moved aside after the fence`,
    );
  });

  it('a claim left by a process that is gone', async () => {
    reset();
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(
      claimPath(dataDir),
      JSON.stringify({
        workflowId: 'recover-crashed',
        runId: 'r',
        instance: 'restore',
        since: '2026-12-03T00:00:00.000Z',
        host: os.hostname(),
        pid: dead.pid,
        nonce: 'n1',
      }),
    );
    expect(await checkSiteFree(runbook, input())).toContain('is empty or absent');
  });
});

describe('preflight refuses what the restore would refuse', () => {
  it("this workflow's own promoted copy: never restored over", async () => {
    reset();
    marker(dataDir, { workflowId: WF, state: 'promoted', promotedAt: '2026-12-03T01:00:00.000Z' });
    const r = await refusal(checkSiteFree(runbook, input()));
    expect(r.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(r.message.split('\n')).toEqual([
      `restore.dataDir ${dataDir} holds this recovery's copy, promoted at 2026-12-03T01:00:00.000Z; it is not restored over`,
      'HINT: a promoted copy may be serving as the primary: Lifeboat neither stops nor moves it',
      'HINT: if it truly must be replaced, stop it and move it away by hand, then start the recovery again',
    ]);
  });

  it('a claim of a live restore of another workflow, without reading the directory', async () => {
    reset();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(
      claimPath(dataDir),
      JSON.stringify({
        workflowId: 'recover-other',
        runId: 'r-other',
        instance: 'restore',
        since: '2026-12-03T00:00:00.000Z',
        host: os.hostname(),
        pid: process.pid,
        nonce: 'n2',
      }),
    );
    const r = await refusal(checkSiteFree(runbook, input()));
    expect(r.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(r.message.split('\n')[0]).toBe(
      `restore.dataDir ${dataDir} is claimed by workflow recover-other (run r-other), restore activity on host ${os.hostname()} pid ${process.pid}, since 2026-12-03T00:00:00.000Z, not by workflow ${WF}`,
    );
    expect(r.message).toContain('HINT: once it is released, start the recovery again');
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it("another recovery's copy, stopped: someone's data, side by side", async () => {
    reset();
    marker(dataDir, { workflowId: 'recover-last-week' });
    const r = await refusal(checkSiteFree(runbook, input()));
    expect(r.message.split('\n')[0]).toBe(
      `restore.dataDir ${dataDir} is not empty and was not restored by this recovery (workflow ${WF}): it holds a PostgreSQL 15 data directory (${MARKER_FILE}, PG_VERSION) restored by Lifeboat for another recovery: workflow recover-last-week (run run-before), backup 20261202T000000Z, state replaying since 2026-12-03T00:00:00.000Z`,
    );
    expect(r.message).not.toContain('pg_ctl stop');
  });
});
