// The restore host's side of a recovery (shared/DESIGN.md §4.1 steps 7, 8,
// 11): everything that owns the restored data directory and its postmaster.
//   restore.ts        restore-base-backup: make the directory ready, extract, verify
//   claim.ts          <dataDir>.lifeboat-claim: one restore at a time per directory
//   data-dir.ts       absent, empty, ours or someone's: never deleted, moved aside
//   room.ts           free space, kept copies, DISK_FULL
//   extract.ts        repository -> zstd -> tar, sha256, pg_verifybackup
//   extract-parts.ts  the same for a backup in parts, one tar per core, checked as read
//   marker.ts         .lifeboat-restore.json: what makes a directory provably ours
//   recovery-conf.ts  the recovery settings block and the signal file
//   replay.ts         replay-wal: start, wait for the pause at the target
//   replay-failure.ts why a replay stopped; archive-end.ts: the archive's end and replay's timeline
//   engine-restore.ts restore-base-backup on another engine (pgBackRest), same claim and marker
//   site-restore.ts   what both restores share: the claim, the preparation's input, the marker
//   engine-replay.ts  replay-wal's restore_command and WAL listing for the runbook's engine
//   instance.ts       promote and stop the restored instance
//   site.ts           which instance: the runbook's restore, or its drill
//   port.ts           who listens on a port a restore or drill wants
//   site-check.ts     preflight: directory and port free or ours, before any fence
//   postmaster.ts     pg_ctl as the OS user; os-user.ts: runuser and the environment
// Activities (activities/restore.ts) wrap these with heartbeats.
import { LifeboatError, isLifeboatError } from '../errors';
import { runTool } from '../backup/run-tool';
import type { RestoreInput, RestoreProgress, RestoreResult } from '../recovery/contract';
import { clusterName, type Runbook } from '../runbook/schema';
import { checkConfigSources, ensureServerConfig } from './config-files';
import { moveAside, prepareDataDir } from './data-dir';
import { extractBaseBackup, sweepDeadManifestDirs } from './extract';
import type { ClaimRequest } from './claim';
import { findBackupInRepositories, nextBackupSource, type BackupSource } from './backup-source';
import { diskFullError, isNoSpace } from './room';
import { updateMarker, writeMarker, type RestoreMarker } from './marker';
import type { PgHost } from './postmaster';
import { requireFreePort } from './port';
import type { RestoreSite } from './site';
import { beginRestore, claimSite, prepareInput, siteMarker } from './site-restore';

export function restoreHost(runbook: Runbook): PgHost {
  return { dataDir: runbook.restore.dataDir, pgBin: runbook.cluster.pgBin, osUser: runbook.cluster.osUser };
}

export interface RestoreHooks {
  onProgress: (p: RestoreProgress) => void;
  signal?: AbortSignal;
  /** Whether the run holding a handed-over claim still runs (Temporal); see claim.ts. */
  holderRunning?: ClaimRequest['holderRunning'];
}

export async function restoreBaseBackup(
  runbook: Runbook,
  input: RestoreInput,
  hooks: RestoreHooks,
): Promise<RestoreResult> {
  const site = beginRestore(runbook, input, hooks);
  const pg = site.pg;
  const cluster = clusterName(runbook);
  // A temporary directory of a killed pg_verifybackup is nobody's now.
  await sweepDeadManifestDirs();
  // Everything that can be checked without touching the directory comes
  // first: a wrong backup id or the wrong binaries must not move anything aside.
  // The first repository of the runbook's that holds the backup (backup-source.ts).
  const source = await findBackupInRepositories(runbook, cluster, input.backupId);
  const { meta } = source;
  await checkServerVersion(pg, meta.pgVersion, meta.backupId);
  checkConfigSources(runbook);

  // The claim before anything in the directory is read or written: of two
  // restores racing for it, exactly one goes on (claim.ts).
  const claim = await claimSite(site, input, hooks);
  let finished = false;
  const stage = { what: `preparing ${site.field}.dataDir for backup ${meta.backupId}` };
  try {
    const { result, served } = await restoreClaimed(runbook, input, hooks, { site, source, stage });
    finished = true;
    return served.fallback ? { ...result, repository: served.fallback } : result;
  } catch (err) {
    if (isNoSpace(err)) {
      throw await diskFullError({
        field: `${site.field}.dataDir`,
        dataDir: pg.dataDir,
        osUser: pg.osUser,
        what: stage.what,
        neededBytes: meta.sizeBytes,
        workflowId: input.workflowId,
        err,
      });
    }
    throw err;
  } finally {
    // A drill keeps its directory and port until teardown; a recovery's copy is
    // spoken for by its marker from here on (data-dir.ts refuses it to others).
    // Neither may hide the restore's own outcome: a claim left with a live
    // pid holds until teardown (a drill) or the next attempt of this workflow.
    if (finished && site.instance === 'drill') await claim.handOver().catch(() => undefined);
    else await claim.release().catch(() => undefined);
  }
}

async function restoreClaimed(
  runbook: Runbook,
  input: RestoreInput,
  hooks: RestoreHooks,
  ctx: { site: RestoreSite; source: BackupSource; stage: { what: string } },
): Promise<{ result: RestoreResult; served: BackupSource }> {
  const { site, stage } = ctx;
  let source = ctx.source;
  const { meta } = source;
  const pg = site.pg;
  const cluster = clusterName(runbook);
  if (site.instance !== 'restore') await requireFreePort(site, input.workflowId);

  const prepareArgs = prepareInput(runbook, site, input);
  const prepared = await prepareDataDir(prepareArgs);
  if (prepared.kind === 'reuse') {
    // A retry after the configuration check failed (e.g. restore.hbaFile added since).
    const config = await ensureServerConfig(pg.dataDir, runbook);
    hooks.onProgress({ phase: 'done', bytes: prepared.result.bytes, totalBytes: prepared.result.bytes });
    return {
      result: config.notes.length ? { ...prepared.result, configNotes: config.notes } : prepared.result,
      served: source,
    };
  }

  const backup = { startLsn: meta.startLsn, timeline: meta.timeline, walSegmentSize: meta.walSegmentSize };
  const marker: RestoreMarker = siteMarker(site, input, 'extracting', backup, prepared.movedAside);
  // Written before the first byte lands: from here on the directory is
  // provably ours, so a retry after a crash may move it aside (or, while
  // still 'extracting' in this run, remove it: data-dir.ts says why).
  stage.what = `writing the marker of backup ${meta.backupId}`;
  await writeMarker(pg.dataDir, marker, pg.osUser);
  const extractFrom = (from: BackupSource) => {
    stage.what = `extracting backup ${meta.backupId}`;
    return extractBaseBackup({
      repo: from.repo,
      cluster,
      meta,
      pg,
      signal: hooks.signal,
      ...(runbook.restore.parallel ? { parallel: runbook.restore.parallel } : {}),
      onDownload: (bytes, totalBytes) => hooks.onProgress({ phase: 'downloading', bytes, totalBytes }),
      onVerify: () => {
        stage.what = `verifying backup ${meta.backupId}`;
        hooks.onProgress({ phase: 'verifying', bytes: meta.storedBytes, totalBytes: meta.storedBytes });
      },
    }).catch(async (err: unknown) => {
      // A copy that failed its checks is evidence (a damaged backup, or a bad
      // disk here): the retry moves it aside rather than removing it.
      if (isLifeboatError(err) && err.code === 'BACKUP_VERIFY_FAILED') {
        await updateMarker(pg.dataDir, marker, { keep: err.what.split('\n')[0]! }, pg.osUser).catch(() => undefined);
      }
      throw err;
    });
  };
  let extracted: Awaited<ReturnType<typeof extractBaseBackup>>;
  // A repository that fails mid-extraction (a damaged or missing part, a
  // broken download: backup-source.ts) hands over to the next one holding
  // the same backup: what the first gave is moved aside (kept, never
  // deleted) and the extraction starts again into an empty directory.
  for (;;) {
    try {
      extracted = await extractFrom(source);
      break;
    } catch (err) {
      const next = await nextBackupSource(runbook, cluster, source, err);
      if (!next?.fallback) throw err;
      const failed = next.fallback.skipped.at(-1)!;
      stage.what = `moving aside what repository ${failed.name} gave of backup ${meta.backupId}`;
      failed.partial = await moveAside(pg.dataDir, 'lifeboat-partial', pg.osUser);
      process.stderr.write(
        `WARNING: repository ${failed.name} (${failed.url}): ${failed.reason}; restoring backup ${meta.backupId} again from repository ${next.fallback.name} (${next.fallback.url}); what was extracted is kept in ${failed.partial}\n`,
      );
      await prepareDataDir(prepareArgs);
      stage.what = `writing the marker of backup ${meta.backupId}`;
      await writeMarker(pg.dataDir, marker, pg.osUser);
      source = next;
    }
  }
  stage.what = `recording the finished extraction of backup ${meta.backupId}`;
  const result: RestoreResult = {
    dataDir: pg.dataDir,
    port: site.port,
    ...(prepared.movedAside ? { movedAside: prepared.movedAside } : {}),
    ...(prepared.removedOwnPartial ? { removedPartial: true as const } : {}),
    bytes: extracted.bytes,
    files: extracted.files,
    finishedAt: new Date().toISOString(),
  };
  await updateMarker(pg.dataDir, marker, { state: 'extracted', result }, pg.osUser);
  // After the marker: the extracted files are good and kept even when this fails.
  const config = await ensureServerConfig(pg.dataDir, runbook);
  // The WAL prefetcher is started by replay-wal, right before the
  // postmaster (prefetch.ts), not here: a copy restored and then left (a
  // failed run, a test, an operator who removes it) must have no process
  // writing into its pg_wal.
  hooks.onProgress({ phase: 'done', bytes: extracted.storedBytes, totalBytes: extracted.storedBytes });
  // The backup holds its tablespaces inside the data directory (src/backup/base-backup.ts): said where the copy has them.
  const notes = [
    ...config.notes,
    ...(meta.tablespaces ?? []).map(
      (t) =>
        `tablespace ${t.name} (at ${t.location} on the primary) is inside the copy's data directory: pg_tblspc/${t.oid}`,
    ),
  ];
  return { result: notes.length ? { ...result, configNotes: notes } : result, served: source };
}

/** The restore host's PostgreSQL must be the backup's major version, or the copy could never start. */
async function checkServerVersion(pg: PgHost, backupVersion: string, backupId: string): Promise<void> {
  const out = await runTool(`${pg.pgBin}/postgres`, ['--version'], { what: 'postgres --version' });
  const host = /(\d+)(?:\.\d+)?/.exec(out)?.[1];
  const backup = /^(\d+)/.exec(backupVersion)?.[1];
  if (host && backup && host !== backup) {
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `backup ${backupId} is of PostgreSQL ${backupVersion}, but ${pg.pgBin}/postgres on this host is ${out.trim()}`,
      {
        hints: [
          `set cluster.pgBin in the runbook to the PostgreSQL ${backup} bin directory on the restore host`,
          'nothing was moved or changed',
        ],
      },
    );
  }
}
