// `lifeboat metrics` on a runbook whose backups pgBackRest holds
// (engine: { kind: pgbackrest }): the backup figures and WAL gaps come from
// pgBackRest (a real 2.45 stanza on a real PostgreSQL 15,
// test/harness/pgbackrest.ts), the archiver's from pg_stat_archiver as for
// any runbook. A segment moved aside in pgBackRest's repository is a gap
// (moved back after).
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { moveSegmentAside, startPgBackRestRunbook } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort } from '../harness/ports';
import { scrape, startLifeboat, waitServing } from '../harness/prometheus';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe('lifeboat metrics with engine: pgbackrest', () => {
  it("reports pgBackRest's backups and a segment missing from its archive as a WAL gap", async () => {
    const { s, engine, runbooksDir } = await startPgBackRestRunbook(cleanups, {
      name: 'brmetrics',
      stanza: 'lbmetrics',
    });
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
    const aside = moveSegmentAside(s, later[0]!.slice(0, 24));
    try {
      const broken = (await scrape(url)).parsed;
      expect(broken.value('lifeboat_wal_gaps', mine)).toBe(1);
      expect(broken.value('lifeboat_wal_missing_segments', mine)).toBe(1);
    } finally {
      aside.back();
    }
    expect((await scrape(url)).parsed.value('lifeboat_wal_gaps', mine)).toBe(0);
  });
});
