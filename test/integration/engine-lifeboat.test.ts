// Lifeboat's own repository behind the engine boundary (src/engine/lifeboat.ts)
// answers exactly as the functions it wraps, against a real PostgreSQL 15
// primary archiving into a real file:// repository: the catalog, the chosen
// backup, the chain check, a backup, and a restore for a workflow run.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog, readWalArchive } from '../../src/catalog/catalog';
import { analyzeChain } from '../../src/catalog/chain';
import { openEngine } from '../../src/engine';
import { backupOfMeta, type LifeboatEngine } from '../../src/engine/lifeboat';
import { isLifeboatError } from '../../src/errors';
import { chooseBackup } from '../../src/recovery/plan';
import { openRepository } from '../../src/repository';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { asPostgres, PG_BIN, postgresTempDir, switchAndWaitArchived } from '../harness/postgres';

const runbooksDir = postgresTempDir('runbooks');
let tc: TestCluster;
let runbook: Runbook;
let engine: LifeboatEngine;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  tc = await startTestCluster({ name: 'eng-own', kind: 'file', runbooksDir, host: 'eng' });
  runbook = await loadRunbook(tc.name);
  const opened = await openEngine(runbook);
  expect(opened.kind).toBe('lifeboat');
  engine = opened as LifeboatEngine;
  await tc.pg.query('create table t (id int primary key)');
  await tc.pg.query('insert into t select generate_series(1, 50)');
});

afterAll(async () => {
  const dataDir = runbook?.restore.dataDir;
  if (dataDir && existsSync(path.join(dataDir, 'postmaster.pid')))
    await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, 'stop', '-m', 'immediate', '-w']).catch(() => undefined);
  await tc?.stop();
  rmSync(runbooksDir, { recursive: true, force: true });
});

describe("Lifeboat's own engine", () => {
  it('takes a full backup and lists, chooses and checks as the catalog, plan and chain functions do', async () => {
    const first = await engine.takeBackup();
    await tc.pg.query('insert into t select generate_series(51, 60)');
    await switchAndWaitArchived(tc.pg);
    const second = await engine.takeBackup({ type: 'full' });
    await switchAndWaitArchived(tc.pg);

    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const entries = await readCatalog(repo, tc.name);
    const metas = entries.flatMap((e) => (e.status === 'complete' ? [e.meta] : []));
    const listed = await engine.listBackups();
    expect(listed).toEqual(metas.map(backupOfMeta));
    expect(listed.map((b) => b.backupId)).toEqual([first.backupId, second.backupId]);

    for (const target of [
      { time: new Date(Date.parse(first.endTime) + 1).toISOString() },
      { time: new Date().toISOString() },
      { name: 'anything' },
      { lsn: second.endLsn },
      { latest: true as const },
    ]) {
      expect(engine.chooseBackup(listed, target)).toEqual(chooseBackup(metas, target, tc.name));
    }

    const archive = await readWalArchive(repo, tc.name);
    const report = await engine.readArchive();
    expect(report.chain).toEqual(
      analyzeChain({
        walFiles: archive.files.map((f) => f.name),
        histories: archive.histories,
        backups: metas.map((m) => ({
          backupId: m.backupId,
          timeline: m.timeline,
          startWal: m.startWal,
          startLsn: m.startLsn,
          endWal: m.endWal,
        })),
        walSegmentSize: metas[metas.length - 1]!.walSegmentSize,
      }),
    );
    expect(report.gaps).toEqual([]);
    expect((await engine.check()).ok).toBe(true);
  });

  it('takes full backups only, and says where differential and incremental ones come from', async () => {
    const err = await engine.takeBackup({ type: 'incr' }).catch((e: unknown) => e);
    expect(isLifeboatError(err) && err.code).toBe('INPUT_INVALID');
    expect(isLifeboatError(err) && err.hints[0]).toMatch(/engine: \{ kind: pgbackrest/);
  });

  it('restores for a workflow run into the runbook restore directory; the recovery settings follow in replay-wal', async () => {
    const [backup] = await engine.listBackups();
    const elsewhere = await engine
      .restore({
        backupId: backup!.backupId,
        dataDir: '/nonexistent/copy',
        target: { latest: true },
        run: { runbook: tc.name, workflowId: 'wf-eng', runId: 'run-1', mode: 'side-by-side' },
      })
      .catch((e: unknown) => e);
    expect(isLifeboatError(elsewhere) && elsewhere.code).toBe('INPUT_INVALID');

    const dataDir = runbook.restore.dataDir;
    const result = await engine.restore({
      backupId: backup!.backupId,
      dataDir,
      target: { latest: true },
      run: { runbook: tc.name, workflowId: 'wf-eng', runId: 'run-1', mode: 'side-by-side' },
    });
    expect(result.recoverySettings).toBe('by-replay-wal');
    expect(result.dataDir).toBe(dataDir);
    expect(result.result?.files).toBe(result.files);
    expect(readdirSync(dataDir)).toContain('PG_VERSION');
    expect(readdirSync(dataDir)).toContain('.lifeboat-restore.json');
  });
});
