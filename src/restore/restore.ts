// The restore host's side of a recovery (shared/DESIGN.md §4.1 steps 7, 8,
// 11): everything that owns the restored data directory and its postmaster.
//   restore.ts        restore-base-backup: make the directory ready, extract, verify
//   data-dir.ts       absent, empty, ours or someone's: never deleted, moved aside
//   extract.ts        repository -> zstd -> tar, sha256, pg_verifybackup
//   marker.ts         .lifeboat-restore.json: what makes a directory provably ours
//   recovery-conf.ts  the recovery settings block and the signal file
//   replay.ts         replay-wal: start, wait for the pause at the target
//   instance.ts       promote and stop the restored instance
//   site.ts           which instance: the runbook's restore, or its drill
//   port.ts           who listens on a port a drill wants
//   postmaster.ts     pg_ctl as the OS user; os-user.ts: runuser and the environment
// Activities (activities/restore.ts) wrap these with heartbeats.
import { LifeboatError } from '../errors';
import { runTool } from '../backup/run-tool';
import type { RestoreInput, RestoreProgress, RestoreResult } from '../recovery/contract';
import { openRepository } from '../repository';
import { clusterName, type Runbook } from '../runbook/schema';
import { checkConfigSources, ensureServerConfig } from './config-files';
import { prepareDataDir } from './data-dir';
import { extractBaseBackup, findBackup } from './extract';
import { readMarker, updateMarker, writeMarker, type RestoreMarker } from './marker';
import { postmasterRunning, type PgHost } from './postmaster';
import { portAnswers, portOwner } from './port';
import { restoreSite, type RestoreSite } from './site';

export function restoreHost(runbook: Runbook): PgHost {
  return { dataDir: runbook.restore.dataDir, pgBin: runbook.cluster.pgBin, osUser: runbook.cluster.osUser };
}

export interface RestoreHooks {
  onProgress: (p: RestoreProgress) => void;
  signal?: AbortSignal;
}

export async function restoreBaseBackup(runbook: Runbook, input: RestoreInput, hooks: RestoreHooks): Promise<RestoreResult> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  const cluster = clusterName(runbook);
  hooks.onProgress({ phase: 'preparing', bytes: 0, totalBytes: 0 });
  // Everything that can be checked without touching the directory comes
  // first: a wrong backup id or the wrong binaries must not move anything aside.
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const meta = await findBackup(repo, cluster, input.backupId, runbook.name);
  await checkServerVersion(pg, meta.pgVersion, meta.backupId);
  checkConfigSources(runbook);
  if (site.instance === 'drill') await requireFreePort(site, input.workflowId);

  const prepared = await prepareDataDir({
    pg,
    runbookName: runbook.name,
    mode: input.mode,
    workflowId: input.workflowId,
    runId: input.runId,
    backupId: input.backupId,
    ...(site.instance === 'drill' ? { instance: 'drill' as const } : {}),
  });
  if (prepared.kind === 'reuse') {
    // A retry after the configuration check failed (e.g. restore.hbaFile added since).
    const config = await ensureServerConfig(pg.dataDir, runbook);
    hooks.onProgress({ phase: 'done', bytes: prepared.result.bytes, totalBytes: prepared.result.bytes });
    return config.notes.length ? { ...prepared.result, configNotes: config.notes } : prepared.result;
  }

  const marker: RestoreMarker = {
    workflowId: input.workflowId,
    runId: input.runId,
    backupId: input.backupId,
    state: 'extracting',
    at: new Date().toISOString(),
    mode: input.mode,
    ...(site.instance === 'drill' ? { instance: 'drill' as const } : {}),
    backup: { startLsn: meta.startLsn, timeline: meta.timeline, walSegmentSize: meta.walSegmentSize },
    ...(prepared.movedAside ? { movedAside: prepared.movedAside } : {}),
  };
  // Written before the first byte lands: from here on the directory is
  // provably ours, so a retry after a crash may move it aside.
  await writeMarker(pg.dataDir, marker, pg.osUser);
  const extracted = await extractBaseBackup({
    repo,
    cluster,
    meta,
    pg,
    signal: hooks.signal,
    onDownload: (bytes, totalBytes) => hooks.onProgress({ phase: 'downloading', bytes, totalBytes }),
    onVerify: () => hooks.onProgress({ phase: 'verifying', bytes: meta.storedBytes, totalBytes: meta.storedBytes }),
  });
  const result: RestoreResult = {
    dataDir: pg.dataDir,
    port: site.port,
    ...(prepared.movedAside ? { movedAside: prepared.movedAside } : {}),
    bytes: extracted.bytes,
    files: extracted.files,
    finishedAt: new Date().toISOString(),
  };
  await updateMarker(pg.dataDir, marker, { state: 'extracted', result }, pg.osUser);
  // After the marker: the extracted files are good and kept even when this fails.
  const config = await ensureServerConfig(pg.dataDir, runbook);
  hooks.onProgress({ phase: 'done', bytes: extracted.storedBytes, totalBytes: extracted.storedBytes });
  return config.notes.length ? { ...result, configNotes: config.notes } : result;
}

/**
 * A drill starts PostgreSQL on drill.port: refused up front when another
 * listener holds it (before anything is moved or downloaded), unless it is
 * this drill's own postmaster (a retry).
 */
async function requireFreePort(site: RestoreSite, workflowId: string): Promise<void> {
  if (!(await portAnswers(site.address, site.port))) return;
  const marker = await readMarker(site.dataDir);
  if (marker?.workflowId === workflowId && (await postmasterRunning(site.pg))) return;
  const owner = await portOwner(site.port);
  throw new LifeboatError('PORT_IN_USE', `drill.port ${site.port} on ${site.address} is already in use by ${owner.description}, so the drill copy cannot start there`, {
    hints: [
      'nothing was moved, downloaded or started; the process on that port was not touched',
      owner.dataDir === site.dataDir
        ? `it is a PostgreSQL in drill.dataDir ${site.dataDir} left by another drill; stop it (as ${site.pg.osUser}): ${site.pg.pgBin}/pg_ctl stop -D ${site.dataDir} -m fast`
        : `set drill.port in the runbook to a port nothing else uses on host ${site.host}, or stop what listens there`,
    ],
    details: { port: site.port, owner: owner.description },
  });
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
      { hints: [`set cluster.pgBin in the runbook to the PostgreSQL ${backup} bin directory on the restore host`, 'nothing was moved or changed'] },
    );
  }
}
