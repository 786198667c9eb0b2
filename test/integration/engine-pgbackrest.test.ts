// The pgBackRest engine (src/engine/pgbackrest/engine.ts) against a real
// pgBackRest 2.45 stanza on a real PostgreSQL 15 primary: posix repository in
// a temporary directory, pgBackRest run as the postgres OS user
// (test/harness/pgbackrest.ts). The catalog is what `pgbackrest info` says;
// a time target chooses the backup that finished before it; a WAL segment
// moved aside in the repository is a gap (moved back after); a restore to a
// named restore point pauses there with exactly the rows written before it;
// a damaged segment is a finding of pgbackrest verify; expire follows the
// stanza's retention; a copy promoted into the stanza makes a timeline 2
// whose history file is read back through repo-get. Files in the repository
// are moved aside, never deleted.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { EngineBackup } from '../../src/engine/types';
import { isLifeboatError } from '../../src/errors';
import { nextSegmentName } from '../../src/wal/names';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startPgBackRestPrimary, type PgBackRestStanza } from '../harness/pgbackrest';
import { moveSegmentAside, startCopy } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';

let s: PgBackRestStanza;
let engine: PgBackRestEngine;
let full: EngineBackup;
let incr: EngineBackup;
/** A time after the full backup finished and before the incremental started. */
let between: string;
const cleanups: Cleanups = [];

async function nextSecond(): Promise<void> {
  // pgBackRest records backup times in whole seconds: the next backup must start in a later second than `between`.
  const second = Math.floor(Date.parse(between) / 1000);
  await waitFor('the next second', async () => (Math.floor(Date.now() / 1000) > second ? true : undefined), {
    intervalMs: 50,
  });
}

beforeAll(async () => {
  s = await startPgBackRestPrimary();
  cleanups.push(() => s.stop());
  engine = new PgBackRestEngine(s.setting, { osUser: 'postgres' });
  const pg = s.primary;
  await pg.query('create table t (id int primary key, v text)');
  await pg.query(`insert into t select g, 'before full' from generate_series(1, 100) g`);
  const progress: number[] = [];
  full = await engine.takeBackup({
    type: 'full',
    onProgress: (p) => p.percent !== undefined && progress.push(p.percent),
  });
  expect(progress.length).toBeGreaterThan(0);
  between = (await pg.query<{ now: Date }>('select now()'))[0]!.now.toISOString();
  await nextSecond();
  await pg.query(`insert into t select g, 'before incr' from generate_series(101, 200) g`);
  incr = await engine.takeBackup({ type: 'incr' });
  // Segments after the incremental, so a gap can lie between two present ones.
  for (let i = 0; i < 3; i++) {
    await pg.query(`insert into t values (${1000 + i}, 'segment ${i}')`);
    await switchAndWaitArchived(pg);
  }
  await pg.query(`select pg_create_restore_point('hp-before-damage')`);
  await pg.query(`update t set v = 'damaged' where id <= 150`);
  await pg.query(`insert into t values (9999, 'after the restore point')`);
  await switchAndWaitArchived(pg);
});

afterAll(() => runCleanups(cleanups));

describe('pgBackRest engine, read side', () => {
  it('lists the backups exactly as pgbackrest info --output=json does', async () => {
    const raw = JSON.parse(await s.run(['info', '--output=json'])) as Array<{
      backup: Array<{
        label: string;
        type: string;
        prior: string | null;
        lsn: { start: string; stop: string };
        timestamp: { start: number; stop: number };
        archive: { start: string; stop: string };
      }>;
    }>;
    const expected = raw[0]!.backup.map((b) => ({
      backupId: b.label,
      type: b.type,
      startLsn: b.lsn.start,
      endLsn: b.lsn.stop,
      startTime: new Date(b.timestamp.start * 1000).toISOString().replace('.000Z', 'Z'),
      endTime: new Date(b.timestamp.stop * 1000).toISOString().replace('.000Z', 'Z'),
      startWal: b.archive.start,
      endWal: b.archive.stop,
      timeline: 1,
      ...(b.prior ? { prior: b.prior } : {}),
    }));
    const listed = await engine.listBackups();
    expect(listed.map(({ sizeBytes: _s, storedBytes: _t, ...rest }) => rest)).toEqual(expected);
    expect(listed.map((b) => [b.backupId, b.type, b.prior])).toEqual([
      [full.backupId, 'full', undefined],
      [incr.backupId, 'incr', full.backupId],
    ]);
  });

  it('chooses, for a time target, the newest backup that finished before it', async () => {
    const backups = await engine.listBackups();
    expect(engine.chooseBackup(backups, { time: between }).backupId).toBe(full.backupId);
    const now = (await s.primary.query<{ now: Date }>('select now()'))[0]!.now.toISOString();
    expect(engine.chooseBackup(backups, { time: now }).backupId).toBe(incr.backupId);
    let refused: unknown;
    try {
      engine.chooseBackup(backups, { time: '2000-01-01T00:00:00Z' });
    } catch (err) {
      refused = err;
    }
    expect(isLifeboatError(refused) && refused.code).toBe('BACKUP_NOT_FOUND');
  });

  it('reports a segment moved aside in its repository as a gap, and none once it is back', async () => {
    const clean = await engine.readArchive();
    expect(clean.gaps).toEqual([]);
    const line = clean.timelines.find((t) => t.timeline === 1)!;
    // A segment after the incremental's, before the newest: both backups replay through it.
    const victim = nextSegmentName(incr.endWal);
    expect(victim < line.last!).toBe(true);
    const aside = moveSegmentAside(s, victim);
    try {
      const report = await engine.readArchive();
      expect(report.gaps).toEqual([
        { timeline: 1, first: victim, last: victim, count: 1, onLineOf: [1], neededBy: [full.backupId, incr.backupId] },
      ]);
      expect(report.problems[0]!.message).toBe(
        `WAL gap on timeline 1: ${victim} is missing (needed by backup ${full.backupId} and every later one)`,
      );
      expect(report.problems[0]!.hints).toContain(
        `if the primary still has it in pg_wal, push it again as the postgres user, in the data directory: pgbackrest --config=${s.config} --stanza=${s.stanza} archive-push pg_wal/${victim}`,
      );
      // `check` reports it too: pgBackRest's own verify counts only the files that are there.
      const check = await engine.check();
      expect(check.ok).toBe(false);
      expect(check.problems.map((p) => p.kind)).toEqual(['wal-gap']);
    } finally {
      aside.back();
    }
    expect((await engine.readArchive()).gaps).toEqual([]);
  });

  it("maps pgBackRest's own errors, keeping its code and text", async () => {
    const wrongRepo = new PgBackRestEngine({ ...s.setting, repo: 2 }, { osUser: 'postgres' });
    const err = await wrongRepo.listBackups().catch((e: unknown) => e);
    expect(isLifeboatError(err) && err.code).toBe('RUNBOOK_INVALID');
    expect(isLifeboatError(err) && err.hints[0]).toBe("pgBackRest error [032]: key '2' is not valid for 'repo' option");
    const noStanza = new PgBackRestEngine({ ...s.setting, stanza: 'nonesuch' }, { osUser: 'postgres' });
    const missing = await noStanza.listBackups().catch((e: unknown) => e);
    expect(isLifeboatError(missing) && [missing.code, missing.what]).toEqual([
      'REPOSITORY_INVALID',
      'pgBackRest has no stanza nonesuch: missing stanza path',
    ]);
  });
});

describe('pgBackRest engine, restore', () => {
  it('restores to a named restore point, paused there with exactly the rows written before it', async () => {
    const backups = await engine.listBackups();
    const choice = engine.chooseBackup(backups, { name: 'hp-before-damage' });
    expect(choice.backupId).toBe(incr.backupId);
    const dataDir = path.join(s.root, 'copy');
    const port = await freePort();
    const phases: string[] = [];
    const result = await engine.restore({
      backupId: choice.backupId,
      dataDir,
      target: { name: 'hp-before-damage' },
      settings: [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${s.root}'`],
      onProgress: (p) => phases.push(p.phase),
    });
    expect(result.recoverySettings).toBe('written');
    expect(result.files).toBeGreaterThan(0);
    expect(phases[0]).toBe('preparing');
    expect(phases).toContain('downloading');
    expect(phases[phases.length - 1]).toBe('done');

    const { query, paused } = await startCopy(cleanups, dataDir, port, path.join(s.root, 'copy.log'));
    await paused();
    const rows = await query<{ n: string; damaged: string; after: string; max: number }>(
      `select count(*)::text as n, count(*) filter (where v = 'damaged')::text as damaged,
              count(*) filter (where id = 9999)::text as after, max(id) as max from t`,
    );
    expect(rows[0]).toEqual({ n: '203', damaged: '0', after: '0', max: 1002 });
    expect((await query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r).toBe(true);
  });

  it('refuses a directory that is not empty, writing nothing', async () => {
    const dataDir = path.join(s.root, 'occupied');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'keep-me'), 'an operator left this');
    const err = await engine
      .restore({ backupId: full.backupId, dataDir, target: { latest: true } })
      .catch((e: unknown) => e);
    expect(isLifeboatError(err) && err.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(readdirSync(dataDir)).toEqual(['keep-me']);
  });
});

describe('pgBackRest engine, verify and expire', () => {
  it("reports a damaged segment through pgbackrest verify's findings (the original moved back after)", async () => {
    const archive = await engine.readArchive();
    const seg = archive.timelines.find((t) => t.timeline === 1)!.first!;
    const aside = moveSegmentAside(s, seg, 'aside-damaged');
    const damaged = path.join(aside.dir, aside.stored);
    try {
      // The same name with other bytes: what a bad disk or a stray write leaves.
      const bytes = readFileSync(aside.aside);
      const middle = bytes.length >> 1;
      bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
      writeFileSync(damaged, bytes);
      const check = await engine.check();
      const verify = check.problems.filter((p) => p.kind === 'pgbackrest-verify');
      expect(verify.map((p) => p.message)).toEqual([
        'pgbackrest verify: stanza status: error',
        expect.stringMatching(/^pgbackrest verify: archiveId: 15-1: (checksum invalid|other) 1$/) as string,
      ]);
    } finally {
      renameSync(damaged, `${aside.aside}.damaged`);
      aside.back();
    }
    expect((await engine.check()).problems).toEqual([]);
  });

  it("expires by the stanza's own retention, and says which backups went", async () => {
    await engine.takeBackup({ type: 'full' });
    const before = await engine.listBackups();
    expect(before.map((b) => b.type)).toEqual(['full', 'incr', 'full']);
    // The same stanza with one full backup retained: a copy of its configuration, nothing else changed.
    const keepOne = path.join(s.root, 'keep-one.conf');
    copyFileSync(s.config, keepOne);
    writeFileSync(keepOne, readFileSync(keepOne, 'utf8').replace('repo1-retention-full=10', 'repo1-retention-full=1'));
    const expiring = new PgBackRestEngine({ ...s.setting, configPath: keepOne }, { osUser: 'postgres' });
    const result = await expiring.expire();
    expect(result.expired).toEqual([before[0]!.backupId, before[1]!.backupId]);
    expect((await engine.listBackups()).map((b) => b.backupId)).toEqual([before[2]!.backupId]);
  });
});

describe('pgBackRest engine, timelines', () => {
  it('follows a second timeline: a copy promoted while archiving into the stanza, its history read through repo-get', async () => {
    const [backup] = await engine.listBackups();
    const dataDir = path.join(s.root, 'promoted');
    const port = await freePort();
    // --pg1-path: %p is relative to this copy's directory, not the primary's that the configuration names.
    const push = `pgbackrest --config=${s.config} --stanza=${s.stanza} --pg1-path=${dataDir} archive-push %p`;
    // After pgBackRest's settings, so these win: this copy archives into the stanza, as a promoted primary would.
    await engine.restore({
      backupId: backup!.backupId,
      dataDir,
      target: { latest: true },
      settings: [
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${s.root}'`,
        'archive_mode = on',
        `archive_command = '${push}'`,
      ],
    });
    await startCopy(cleanups, dataDir, port, path.join(s.root, 'promoted.log'));
    const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      await c.query('select pg_promote(true, 120)');
      const { rows } = await c.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
      const walfile = rows[0]!.walfile;
      expect(walfile.slice(0, 8)).toBe('00000002');
      await waitFor(
        `${walfile} archived from the promoted copy`,
        async () => {
          const a = await c.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
          return a.rows[0]?.last && a.rows[0].last >= walfile ? true : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } finally {
      await c.end();
    }
    const report = await engine.readArchive();
    const two = report.chain.timelines.find((t) => t.timeline === 2);
    expect(two?.history).toBe('present');
    expect(two?.parents.map((p) => p.timeline)).toEqual([1]);
    expect(report.timelines.map((t) => t.timeline)).toEqual([1, 2]);
    expect(report.gaps).toEqual([]);
    expect(report.problems).toEqual([]);
  });
});
