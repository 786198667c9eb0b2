// migrationCheckpoint's work (shared/DESIGN.md §4): a named point to recover
// to, taken before a risky change, and only when a recovery to it would work:
// the archiver healthy within the RPO, a verified base backup whose WAL chain
// is unbroken; then pg_create_restore_point(label), a forced segment switch,
// and a wait until that segment is in the repository. A restore point whose
// WAL is only on the primary is worth nothing when the primary is lost.
import { Client } from 'pg';
import { readArchiverStatus } from '../catalog/archiver';
import { listBackups, readWalArchive } from '../catalog/catalog';
import type { HealthProblem } from '../catalog/chain';
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import { quoteIdent } from '../gates/sql';
import { primaryClientConfig } from '../pg/connect';
import { checkWalCoverage } from '../recovery/plan';
import { openRepository } from '../repository';
import { keys } from '../repository/layout';
import { engineSetting } from '../runbook/engine';
import { clusterName, type Runbook } from '../runbook/schema';
import { openEngine } from '../engine';
import { checkEngineArchive, engineHasSegment } from './engine-checkpoint';

export interface CheckpointPreflight {
  backupId: string;
  /** WAL from the backup's start to the newest archived segment, all present. */
  walFrom: string;
  walTo?: string;
  lastArchivedWal: string | null;
  lastArchivedTime: string | null;
}

/** Read-only checks; throws CHECKPOINT_REFUSED with every reason found. */
export async function checkpointPreflight(runbook: Runbook, label: string): Promise<CheckpointPreflight> {
  const problems: HealthProblem[] = [];
  let archiver: Awaited<ReturnType<typeof readArchiverStatus>> | undefined;
  try {
    archiver = await readArchiverStatus(runbook);
    problems.push(...archiver.problems);
  } catch (err) {
    if (!isLifeboatError(err)) throw err;
    problems.push({ kind: 'primary-unreachable', message: err.what, hints: [...err.hints] });
  }

  let found: { backupId: string; walFrom: string; walTo?: string } | undefined;
  if (engineSetting(runbook).kind !== 'lifeboat') {
    // pgBackRest: its own listing, never its files (./engine-checkpoint.ts).
    const checked = await checkEngineArchive(runbook);
    problems.push(...checked.problems);
    if (checked.backupId && checked.walFrom)
      found = {
        backupId: checked.backupId,
        walFrom: checked.walFrom,
        ...(checked.walTo ? { walTo: checked.walTo } : {}),
      };
  } else {
    found = await checkOwnArchive(runbook, problems);
  }
  if (problems.length > 0) {
    throw new LifeboatError(
      'CHECKPOINT_REFUSED',
      `no checkpoint "${label}" for runbook ${runbook.name}: a recovery to it could not be trusted: ${problems.map((p) => p.message).join('; ')}`,
      {
        hints: [
          ...problems.flatMap((p) => p.hints),
          'nothing was written to the primary; fix the above (lifeboat check --runbook ' +
            runbook.name +
            ' shows the same) and run the checkpoint again',
          'do not start the risky change before a checkpoint has been taken',
        ],
        details: { problems: problems.map((p) => p.kind) },
      },
    );
  }
  return {
    ...found!,
    lastArchivedWal: archiver?.lastArchivedWal ?? null,
    lastArchivedTime: archiver?.lastArchivedTime ?? null,
  };
}

/** Lifeboat's own repository: the newest verified backup and its WAL chain to the end of the archive; problems are pushed. */
async function checkOwnArchive(
  runbook: Runbook,
  problems: HealthProblem[],
): Promise<{ backupId: string; walFrom: string; walTo?: string } | undefined> {
  const cluster = clusterName(runbook);
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const [backups, archive] = await Promise.all([listBackups(repo, cluster), readWalArchive(repo, cluster)]);
  const backup = backups[backups.length - 1];
  let coverage: ReturnType<typeof checkWalCoverage> | undefined;
  if (!backup) {
    problems.push({
      kind: 'no-backup',
      message: `no verified base backup of cluster ${cluster} in ${repo.url}: a recovery to the checkpoint would have nothing to start from`,
      hints: [
        `take one first: lifeboat backup --runbook ${runbook.name}`,
        `lifeboat backups --runbook ${runbook.name} lists what is there`,
      ],
    });
  } else {
    try {
      coverage = checkWalCoverage({
        backup,
        target: { latest: true },
        files: archive.files.map((f) => ({ name: f.name })),
        histories: archive.histories,
        cluster,
        repoArgs: `--runbook ${runbook.name}`,
      });
    } catch (err) {
      if (!(isLifeboatError(err) && err.code === 'WAL_GAP')) throw err;
      problems.push({
        kind: 'wal-gap',
        message: err.what,
        hints: err.hints.filter((h) => !h.startsWith('nothing was touched')),
      });
    }
  }
  if (!backup || !coverage) return undefined;
  return { backupId: backup.backupId, walFrom: coverage.walFrom, ...(coverage.walTo ? { walTo: coverage.walTo } : {}) };
}

export interface RestorePoint {
  lsn: string;
  time: string;
  segment: string;
}

/**
 * pg_create_restore_point(label), then pg_switch_wal() so the segment that
 * holds it is finished and handed to the archiver now, not when it fills up.
 * Not idempotent: a second call writes a second point of the same name
 * (recovery stops at the first), so the workflow calls it once.
 */
export async function createRestorePoint(runbook: Runbook, label: string): Promise<RestorePoint> {
  const p = runbook.cluster.primary;
  const client = new Client(primaryClientConfig(runbook));
  try {
    await client.connect();
  } catch (err) {
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `cannot connect to the primary ${p.user}@${p.host}:${p.port}/${p.database} to create restore point "${label}": ${errorMessage(err)}`,
      {
        hints: ['is the primary up? nothing was created; run the checkpoint again once it answers'],
        cause: err,
      },
    );
  }
  try {
    // pg_walfile_name of the record's end: when the record ends exactly on a
    // segment boundary, that is the segment before (which holds it).
    const { rows } = await client.query<{ lsn: string; segment: string; time: string }>(
      `with rp as (select pg_create_restore_point($1) as lsn)
       select rp.lsn::text as lsn, pg_walfile_name(rp.lsn) as segment,
              to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as time
         from rp`,
      [label],
    );
    await client.query('select pg_switch_wal()');
    const r = rows[0]!;
    return { lsn: r.lsn, segment: r.segment, time: r.time };
  } catch (err) {
    const msg = errorMessage(err);
    const denied = (err as { code?: string }).code === '42501' || /permission denied/.test(msg);
    const role = quoteIdent(p.user);
    throw new LifeboatError(
      denied ? 'PRIVILEGE_MISSING' : 'SQL_FAILED',
      `creating restore point "${label}" on ${p.host}:${p.port} failed: ${msg}`,
      {
        hints: denied
          ? [
              // EXECUTE on a function is granted per database (each database has its own pg_proc): in another one it does nothing here.
              `as a superuser connected to database ${p.database} (the grant holds only in the database it is made in): ` +
                `GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO ${role}; GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO ${role};`,
              `lifeboat grants --runbook ${runbook.name} prints every grant the role needs; lifeboat doctor --runbook ${runbook.name} checks them`,
              'no restore point was created; run the checkpoint again after granting',
            ]
          : ['pg_create_restore_point needs wal_level replica or logical and a primary (not a standby)'],
        cause: err,
      },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls the repository until the segment is archived; throws WAL_NOT_FOUND after `timeoutSeconds`. */
export async function waitForArchivedSegment(opts: {
  runbook: Runbook;
  segment: string;
  label: string;
  timeoutSeconds: number;
  onWait?: (waitedSeconds: number) => void;
}): Promise<{ key: string }> {
  const { runbook, segment } = opts;
  // Lifeboat's own repository: a HEAD of the segment's key; pgBackRest: its archive listing (repo-ls), a second apart.
  let probe: () => Promise<boolean>;
  let where: string;
  let key: string;
  if (engineSetting(runbook).kind === 'lifeboat') {
    const cluster = clusterName(runbook);
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    key = keys.wal(cluster, segment);
    where = repo.url;
    probe = async () => Boolean(await repo.head(key));
  } else {
    where = (await openEngine(runbook)).label;
    key = `${where}: ${segment}`;
    probe = () => engineHasSegment(runbook, segment);
  }
  const pollMs = engineSetting(runbook).kind === 'lifeboat' ? 500 : 1000;
  const started = Date.now();
  for (;;) {
    if (await probe()) return { key };
    const waited = (Date.now() - started) / 1000;
    if (waited > opts.timeoutSeconds) {
      throw new LifeboatError(
        'WAL_NOT_FOUND',
        `restore point "${opts.label}" was created, but its segment ${segment} is not in ${where} after ${Math.round(waited)} s: it cannot be recovered to until it is archived`,
        {
          hints: [
            `lifeboat check --runbook ${runbook.name} shows whether the archiver is failing`,
            'do not start the risky change until the segment is archived; then the checkpoint is usable under the same name',
          ],
        },
      );
    }
    opts.onWait?.(waited);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
