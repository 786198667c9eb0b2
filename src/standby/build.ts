// The warm standby (DESIGN.md §4.4): a copy of the cluster on the restore
// host, built from the newest usable base backup with the restore's own
// machinery (claim, marker, never deleting what is not provably ours), then
// kept replaying from the archive `delay` behind the primary. On either
// engine of the runbook (src/engine/): Lifeboat's own repository (extract,
// archive-get), or a pgBackRest stanza (pgbackrest restore --type=standby
// --archive-mode=off, replaying through the archive-get it writes).
//   conf.ts    its recovery settings (restore_command, apply delay, no archiving, loopback)
//   status.ts  where it is against the archive; fell off (rebuild) or behind (warn)
//   check.ts   its findings and line in `lifeboat check`
//   build.ts   build, or reuse and restart what is there
//   adopt.ts   a recovery takes it over instead of restoring a backup
//   copy.ts    a copy in another directory (taken over, or a drill's clone): marked, pointed at itself
//
// Its marker and claim name `lifeboat-standby-<runbook>` where a recovery's
// name the workflow: a rebuild finds the old copy provably ours, stops it and
// moves it aside (src/restore/data-dir.ts), never deletes it.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { openEngine } from '../engine';
import { LifeboatError, errorMessage } from '../errors';
import type { RestoreProgress } from '../recovery/contract';
import type { ClaimRequest } from '../restore/claim';
import { compactTimestamp } from '../restore/data-dir';
import { restoreWithEngine } from '../restore/engine-restore';
import { readMarker, requireOurMarker, updateMarker } from '../restore/marker';
import { postmasterEnvWithCredentials } from '../restore/secret-file';
import {
  fileSize,
  lastLines,
  postmasterRunning,
  readLogFrom,
  runFiles,
  startPostmaster,
  stopPostmaster,
} from '../restore/postmaster';
import { restoreBaseBackup } from '../restore/restore';
import { restoreSite } from '../restore/site';
import { engineSetting } from '../runbook/engine';
import { clusterName, type Runbook } from '../runbook/schema';
import { clearRestoreFailure } from '../wal/get-failure';
import { ensureCloneHba, formatDelay, standbyOwner, writeStandbyConf } from './conf';
import { observeStandby, readStandbyStatus, type StandbyStatus } from './status';

/** After pg_ctl start, how long a missing postmaster may still be starting rather than dead (as replay.ts). */
const START_GRACE_MS = 10_000;

export interface StandbyBuildResult {
  /** built: restored from a backup; reused: running and healthy, left as it was; restarted: its settings changed, or it was stopped. */
  action: 'built' | 'reused' | 'restarted';
  backupId: string;
  /** Where the previous copy went (never deleted). */
  movedAside?: string;
  /** Why this action, in words. */
  why: string;
  status: StandbyStatus;
}

export interface BuildHooks {
  onProgress?: (p: RestoreProgress | { phase: 'starting'; text: string }) => void;
  signal?: AbortSignal;
  holderRunning?: ClaimRequest['holderRunning'];
  /** Rebuild from a backup even when the standby is healthy. */
  force?: boolean;
  /** How long to wait for the started standby to answer (it replays the backup's own WAL first). */
  startTimeoutMs?: number;
}

export async function buildStandby(runbook: Runbook, hooks: BuildHooks = {}): Promise<StandbyBuildResult> {
  const site = restoreSite(runbook, 'standby');
  const before = await readStandbyStatus(runbook);
  if (
    !hooks.force &&
    before.backupId &&
    (before.state === 'replaying' || before.state === 'stopped') &&
    !before.fellOff
  ) {
    // Healthy (or only stopped, e.g. by a reboot): keep it, with the runbook's settings now.
    const changed = await configure(runbook);
    if (before.state === 'replaying' && !changed) {
      return {
        action: 'reused',
        backupId: before.backupId,
        why: 'the standby is running and keeps up with the archive',
        status: before,
      };
    }
    await stopPostmaster(site.pg, 'restarting the standby with its new settings');
    await start(runbook, hooks);
    return {
      action: 'restarted',
      backupId: before.backupId,
      why:
        before.state === 'stopped'
          ? 'the standby was stopped; it resumes from its last restartpoint'
          : `its settings changed (delay ${formatDelay(runbook.standby!.delay)})`,
      status: await readStandbyStatus(runbook),
    };
  }
  const backup = await newestUsableBackup(runbook);
  const why = hooks.force
    ? `rebuilt on request from ${backup.why}`
    : before.state === 'absent'
      ? `built from ${backup.why}`
      : `rebuilt from ${backup.why}: ${before.fellOff ?? before.state}`;
  // The restore step's own machinery for the runbook's engine: claim, move aside, restore, marker.
  const restore = engineSetting(runbook).kind === 'lifeboat' ? restoreBaseBackup : restoreWithEngine;
  const restored = await restore(
    runbook,
    {
      runbook: runbook.name,
      instance: 'standby',
      backupId: backup.backupId,
      mode: 'side-by-side',
      workflowId: standbyOwner(runbook),
      runId: `standby-build-${compactTimestamp()}-${randomBytes(3).toString('hex')}`,
    },
    {
      onProgress: (p) => hooks.onProgress?.(p),
      ...(hooks.signal ? { signal: hooks.signal } : {}),
      ...(hooks.holderRunning ? { holderRunning: hooks.holderRunning } : {}),
    },
  );
  await configure(runbook);
  await start(runbook, hooks);
  return {
    action: 'built',
    backupId: backup.backupId,
    ...(restored.movedAside ? { movedAside: restored.movedAside } : {}),
    why,
    status: await readStandbyStatus(runbook),
  };
}

/**
 * The newest verified backup from whose start the archive runs without a gap
 * to its newest segment: a standby from any other would stop at the gap.
 * Asked of the runbook's engine (Lifeboat's repository, or pgBackRest's info
 * and archive listing), whose chain check names the backups each gap blocks.
 */
export async function newestUsableBackup(runbook: Runbook): Promise<{ backupId: string; why: string }> {
  const engine = await openEngine(runbook);
  const backups = await engine.listBackups();
  const blocked = new Set((await engine.readArchive(backups)).gaps.flatMap((g) => g.neededBy));
  for (const b of [...backups].reverse()) {
    if (!blocked.has(b.backupId))
      return {
        backupId: b.backupId,
        why: `backup ${b.backupId}, the newest whose WAL reaches the archive's end without a gap`,
      };
  }
  const cluster = clusterName(runbook);
  throw new LifeboatError(
    'BACKUP_NOT_FOUND',
    backups.length === 0
      ? `no verified base backup of cluster ${cluster} in ${engine.label}: the standby cannot be built`
      : `every verified backup of cluster ${cluster} in ${engine.label} (${backups.length}, newest ${backups[backups.length - 1]!.backupId}) lies before a gap in the WAL archive: a standby from it would stop there`,
    {
      hints: [
        `take a new base backup: lifeboat backup --runbook ${runbook.name}`,
        `lifeboat check --runbook ${runbook.name} shows the gap`,
        'nothing was touched',
      ],
    },
  );
}

/** Writes the runbook's standby settings; true when they changed. */
async function configure(runbook: Runbook): Promise<boolean> {
  const site = restoreSite(runbook, 'standby');
  const marker = await requireOurMarker(site.dataDir, standbyOwner(runbook), 'standby build');
  const files =
    marker.logFile && marker.socketDir
      ? { logFile: marker.logFile, socketDir: marker.socketDir }
      : await runFiles(site.pg);
  const changed = await writeStandbyConf(
    runbook,
    site.dataDir,
    { port: site.port, socketDir: files.socketDir, delaySeconds: runbook.standby!.delay },
    site.pg.osUser,
  );
  // A drill from the standby clones it over loopback as the runbook's role (conf.ts).
  const hba = await ensureCloneHba(site.dataDir, runbook.cluster.primary.user, site.pg.osUser);
  if (marker.state !== 'replaying' || !marker.logFile) {
    await updateMarker(
      site.dataDir,
      marker,
      { state: 'replaying', target: { latest: true }, ...files },
      site.pg.osUser,
    );
  }
  return changed || hba;
}

/** Starts the standby's postmaster and waits until it answers, still in recovery. */
async function start(runbook: Runbook, hooks: BuildHooks): Promise<void> {
  const site = restoreSite(runbook, 'standby');
  const marker = (await readMarker(site.dataDir))!;
  const logFile = marker.logFile!;
  const logFrom = await fileSize(logFile);
  await clearRestoreFailure(site.dataDir);
  if (!(await postmasterRunning(site.pg)))
    await startPostmaster(site.pg, logFile, await postmasterEnvWithCredentials(runbook, site.pg, 'restore'));
  // pg_ctl start -W returns before the postmaster writes its pid file.
  const grace = Date.now() + START_GRACE_MS;
  const deadline = Date.now() + (hooks.startTimeoutMs ?? 10 * 60_000);
  let last = '';
  for (;;) {
    hooks.signal?.throwIfAborted();
    try {
      const o = await observeStandby(runbook);
      if (o.inRecovery) return;
      throw new LifeboatError('PG_RUNNING', `the standby in ${site.dataDir} came up out of recovery`, {
        hints: [`its server log is ${logFile}`],
      });
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      last = errorMessage(err);
    }
    if (Date.now() > grace && !(await postmasterRunning(site.pg))) {
      const lines = lastLines(await readLogFrom(logFile, logFrom), 10);
      throw new LifeboatError(
        'TOOL_FAILED',
        `the standby's PostgreSQL in ${site.dataDir} stopped while starting; the last lines of its log (${logFile}):\n  ${lines.join('\n  ') || '(empty)'}`,
        {
          hints: [
            'fix what the log names, then run lifeboat standby build again (the copy is kept and restarted, or rebuilt when it fell off the archive)',
          ],
        },
      );
    }
    if (Date.now() > deadline) {
      throw new LifeboatError(
        'PG_UNREACHABLE',
        `the standby in ${site.dataDir} did not answer on 127.0.0.1:${site.port} within ${Math.round((hooks.startTimeoutMs ?? 600_000) / 1000)} s (${last})`,
        {
          hints: [
            `it may still be replaying the backup's own WAL: see its log ${logFile}, then lifeboat standby status --runbook ${runbook.name}`,
          ],
        },
      );
    }
    hooks.onProgress?.({
      phase: 'starting',
      text: `starting the standby: waiting for it to reach a consistent state (${last})`,
    });
    await sleep(250, undefined, hooks.signal ? { signal: hooks.signal } : undefined);
  }
}
