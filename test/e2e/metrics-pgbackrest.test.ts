// `lifeboat metrics` on a runbook whose backups pgBackRest holds
// (engine: { kind: pgbackrest }): the backup figures and WAL gaps come from
// pgBackRest (a real 2.45 stanza on a real PostgreSQL 15,
// test/harness/pgbackrest.ts), the archiver's from pg_stat_archiver as for
// any runbook. A segment moved aside in pgBackRest's repository is a gap
// (moved back after).
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startPgBackRestPrimary } from '../harness/pgbackrest';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { freePort } from '../harness/ports';
import { scrape, startLifeboat, waitServing } from '../harness/prometheus';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe('lifeboat metrics with engine: pgbackrest', () => {
  it("reports pgBackRest's backups and a segment missing from its archive as a WAL gap", async () => {
    const s = await startPgBackRestPrimary('lbmetrics');
    cleanups.push(() => s.stop());
    const runbooksDir = postgresTempDir('runbooks');
    const stateDir = postgresTempDir('state');
    const repoDir = postgresTempDir('repo');
    cleanups.push(() => {
      for (const d of [runbooksDir, stateDir, repoDir]) rmSync(d, { recursive: true, force: true });
    });
    const yaml = demoRunbookYaml({
      name: 'brmetrics',
      pgPort: s.primary.port,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl: `file://${repoDir}`,
      host: 'brmetrics',
      stateDir,
      restorePort: await freePort(),
      drillPort: await freePort(),
    });
    writeFileSync(
      path.join(runbooksDir, 'brmetrics.yaml'),
      `${yaml}engine: { kind: pgbackrest, stanza: ${s.stanza}, configPath: ${s.config} }\n`,
    );
    const engine = new PgBackRestEngine(s.setting, { osUser: 'postgres' });
    await s.primary.query('create table t (id int primary key)');
    await engine.takeBackup({ type: 'full' });
    await s.primary.query('insert into t select generate_series(1, 10)');
    await engine.takeBackup({ type: 'diff' });
    // Written before each switch: a switch with nothing written since the last one starts no segment.
    for (let i = 0; i < 3; i++) {
      await s.primary.query(`insert into t values (${100 + i})`);
      await switchAndWaitArchived(s.primary);
    }
    const backups = await engine.listBackups();
    expect(backups.map((b) => b.type)).toEqual(['full', 'diff']);

    const port = await freePort();
    const exporter = startLifeboat(
      [
        'metrics',
        '--runbook',
        'brmetrics',
        '--runbooks-dir',
        runbooksDir,
        '--listen',
        `127.0.0.1:${port}`,
        '--cache',
        '0',
        '--timeout',
        '120',
        '--no-temporal',
      ],
      cleanups,
    );
    await waitServing(`http://127.0.0.1:${port}/`, exporter);
    const url = `http://127.0.0.1:${port}/metrics`;
    const mine = { runbook: 'brmetrics', cluster: 'brmetrics' };
    const m = (await scrape(url)).parsed;
    for (const source of ['primary', 'repository', 'evidence'])
      expect(m.value('lifeboat_up', { ...mine, source }), source).toBe(1);
    const newest = backups[backups.length - 1]!;
    expect(m.value('lifeboat_backups_verified', mine)).toBe(2);
    expect(m.value('lifeboat_backup_newest_size_bytes', mine)).toBe(newest.sizeBytes);
    expect(m.value('lifeboat_backup_newest_stored_bytes', mine)).toBe(newest.storedBytes);
    expect(m.find('lifeboat_backups_incomplete', mine)).toEqual([]);
    expect(m.value('lifeboat_wal_gaps', mine)).toBe(0);
    expect(m.value('lifeboat_archive_failed_total', mine)).toBe(0);

    // A segment after the newest backup's last one and before the newest archived, moved aside in pgBackRest's repository.
    const dir = path.join(s.repoPath, 'archive', s.stanza, '15-1', newest.endWal.slice(0, 16));
    const archived = readdirSync(dir)
      .filter((f) => /^[0-9A-F]{24}-/.test(f))
      .sort();
    const later = archived.filter((f) => f.slice(0, 24) > newest.endWal);
    expect(later.length, archived.join(' ')).toBeGreaterThanOrEqual(2);
    const stored = later[0]!;
    const aside = path.join(s.root, 'aside');
    mkdirSync(aside, { recursive: true });
    renameSync(path.join(dir, stored!), path.join(aside, stored!));
    try {
      const broken = (await scrape(url)).parsed;
      expect(broken.value('lifeboat_wal_gaps', mine)).toBe(1);
      expect(broken.value('lifeboat_wal_missing_segments', mine)).toBe(1);
    } finally {
      renameSync(path.join(aside, stored!), path.join(dir, stored!));
    }
    expect((await scrape(url)).parsed.value('lifeboat_wal_gaps', mine)).toBe(0);
  });
});
