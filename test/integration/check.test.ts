// `lifeboat check` as an operator runs it (node bin/lifeboat, built by `npm
// run build`) against a real PostgreSQL 15 primary whose own archiver pushes
// WAL into a file:// and an s3:// (MinIO) repository, after a real base backup.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { projectRoot } from '../../src/tools';
import { isSegmentName } from '../../src/wal/names';
import { waitFor } from '../harness/ports';
import { switchAndWaitArchived, type Primary } from '../harness/postgres';
import { startTestCluster } from '../harness/cluster';
import { s3Env, useS3Env } from '../harness/services';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-check-runbooks-'));
const host = `chk${process.pid}`;
const cleanups: Array<() => unknown> = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function lifeboat(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      path.join(projectRoot(), 'bin', 'lifeboat'),
      args,
      { env: { ...process.env, ...s3Env(), LIFEBOAT_RUNBOOKS_DIR: runbooksDir }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(() => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

interface Cluster {
  name: string;
  repoUrl: string;
  pg: Primary;
  repo: Repository;
  backup: BackupMeta;
  /** Segments archived after the backup, oldest first. */
  switched: string[];
}

/** A primary archiving into a fresh repository, one verified base backup, then `switches` archived segments. */
async function clusterWithBackup(
  kind: 'file' | 's3',
  name: string,
  opts: { rpoSeconds?: number; switches?: number } = {},
): Promise<Cluster> {
  const cluster = await startTestCluster({
    name,
    kind,
    runbooksDir,
    host,
    runbook: { rpoSeconds: opts.rpoSeconds ?? 300 },
  });
  cleanups.push(() => cluster.stop());
  const { pg, repoUrl } = cluster;
  await pg.query('create table t (id int, v text)');
  const backup = await takeBaseBackup({ runbook: await loadRunbook(name) });
  const switched: string[] = [];
  for (let i = 0; i < (opts.switches ?? 4); i++) {
    await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 1000) g`);
    switched.push(await switchAndWaitArchived(pg));
  }
  const repo = await openRepository(repoUrl, { endpointEnv: 'S3_ENDPOINT' });
  return { name, repoUrl, pg, repo, backup, switched };
}

async function archivedSegments(c: Cluster): Promise<string[]> {
  const listed = await c.repo.list(keys.walPrefix(c.name));
  return listed.map((o) => o.key.slice(keys.walPrefix(c.name).length).replace(/\.zst$/, '')).filter(isSegmentName);
}

describe.each(['file', 's3'] as const)('lifeboat check on a %s:// repository', (kind) => {
  it('passes on an intact chain, then fails naming the one segment deleted from its middle', async () => {
    const c = await clusterWithBackup(kind, `check-${kind}`);
    const healthy = await lifeboat(['check', '--runbook', c.name]);
    expect(healthy.stdout).toContain(`backups: 1 verified, oldest ${c.backup.backupId}`);
    expect(healthy.stdout).toMatch(/^archiver: last archived [0-9A-F]{24}/m);
    expect(healthy.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(healthy.code).toBe(0);

    // A segment after the backup's start and before the newest one.
    const segments = (await archivedSegments(c)).filter((s) => s > c.backup.startWal);
    const victim = segments[1]!;
    expect(victim < segments[segments.length - 1]!).toBe(true);
    await c.repo.delete([keys.wal(c.name, victim)]);

    const broken = await lifeboat(['check', '--runbook', c.name]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(
      `WAL gap on timeline 1: ${victim} is missing (needed by backup ${c.backup.backupId})`,
    );
    expect(broken.stdout).toContain(
      `  HINT: a restore from an earlier backup stops at ${victim}: point-in-time recovery past it is impossible`,
    );
    expect(broken.stdout.trimEnd().split('\n').pop()).toBe('unhealthy: 1 problem');

    // The repository alone, named directly: the same finding, and it says the archiver was not asked.
    const direct = await lifeboat(['check', '--repo', c.repoUrl, '--cluster', c.name, '--json']);
    expect(direct.code).toBe(1);
    const report = JSON.parse(direct.stdout) as {
      healthy: boolean;
      archiver: unknown;
      notes: string[];
      chain: { gaps: { first: string; neededBy: string[] }[] };
    };
    expect(report.healthy).toBe(false);
    expect(report.archiver).toBeNull();
    expect(report.notes).toContain(
      'archiver not checked: --repo/--cluster name no primary, so only the WAL chain in the repository is checked',
    );
    expect(report.chain.gaps).toEqual([expect.objectContaining({ first: victim, neededBy: [c.backup.backupId] })]);
  });
});

it('reports a stale archiver against the runbook RPO, then a failing one', async () => {
  const c = await clusterWithBackup('file', 'check-stale', { rpoSeconds: 2, switches: 1 });
  // WAL written after the last archived segment and left there past the RPO:
  // it exists only on the primary. (A quiet primary would not be stale.)
  await c.pg.query(`insert into t select g, 'late' from generate_series(1, 100) g`);
  await new Promise((r) => setTimeout(r, 3500));
  const stale = await lifeboat(['check', '--runbook', c.name]);
  expect(stale.code).toBe(1);
  expect(stale.stdout).toMatch(/^archiver stale: last segment archived \d+ s ago, RPO is 2 s$/m);
  expect(stale.stdout).toContain(
    '  HINT: archive_timeout is off: a quiet primary keeps a partly written segment unarchived; set it to at most 2 s',
  );

  // Now break archiving the way a full or unmounted repository would.
  await c.pg.query(`alter system set archive_command = 'false'`);
  await c.pg.query('select pg_reload_conf()');
  const [row] = await c.pg.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
  await waitFor(
    'the archiver to fail',
    async () => {
      const [s] = await c.pg.query<{ failed_count: string; last_failed_wal: string | null }>(
        'select failed_count, last_failed_wal from pg_stat_archiver',
      );
      return s && Number(s.failed_count) > 0 && s.last_failed_wal === row!.walfile ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  const failing = await lifeboat(['check', '--runbook', c.name]);
  expect(failing.code).toBe(1);
  expect(failing.stdout).toMatch(
    new RegExp(`^archiver failing: \\d+ failures?, last ${row!.walfile} at \\d{4}-\\d\\d-\\d\\dT`, 'm'),
  );
  expect(failing.stdout).toContain(`  HINT: the last success was ${c.switched[0]}`);

  // --no-primary looks at the repository only, which is intact.
  const repoOnly = await lifeboat(['check', '--runbook', c.name, '--no-primary']);
  expect(repoOnly.stdout).toContain(
    'note: archiver not checked (--no-primary): only the WAL chain in the repository is checked',
  );
  expect(repoOnly.code).toBe(0);
});
