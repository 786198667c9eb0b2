// Activities only restoreDrill calls: the random target (randomness and the
// clock belong here, not in the workflow), the smoke write in the promoted
// copy, and the teardown. They run on the drill host's queue
// (`lifeboat-host-<drill.host>`): the target needs its pg_waldump, the
// others its disk and processes. Restore, replay, invariants and promote are
// the recovery's own activities called with `instance: 'drill'`.
import { listBackups, readWalArchive } from '../src/catalog/catalog';
import { Context } from '@temporalio/activity';
import type {
  CloneStandbyInput,
  DrillActivities,
  DrillTarget,
  SmokeWriteResult,
  TeardownResult,
} from '../src/drill/contract';
import { cloneStandbyForDrill as clone } from '../src/drill/from-standby';
import type { UseStandbyResult } from '../src/recovery/contract';
import { smokeWrite as smoke, teardownDrill as teardown } from '../src/drill/instance';
import { newestArchivedCommit } from '../src/drill/newest-commit';
import { pickDrillTime } from '../src/drill/target';
import { archiveLine } from '../src/recovery/reach';
import { openRepository } from '../src/repository';
import { loadRunbook } from '../src/runbook/load';
import { clusterName } from '../src/runbook/schema';
import { restoreSite } from '../src/restore/site';
import { heartbeat, lifeboatActivity } from './failure';
import { engineSetting } from '../src/runbook/engine';
import { pickDrillTargetOnEngine } from '../src/drill/engine-target';

/** A random moment of drill.targetWindow that the archive reaches (src/drill/target.ts). Run twice: it only reads; the workflow keeps the first answer it gets. */
export async function pickDrillTarget(input: { runbook: string; after?: string }): Promise<DrillTarget> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    restoreSite(runbook, 'drill'); // a runbook without a drill section fails here, before any download
    // A pgBackRest stanza: the same window from its own commands (src/drill/engine-target.ts).
    if (engineSetting(runbook).kind !== 'lifeboat') return pickDrillTargetOnEngine(runbook, input.after);
    const cluster = clusterName(runbook);
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const [backups, archive] = await Promise.all([listBackups(repo, cluster), readWalArchive(repo, cluster)]);
    const names = archive.files.map((f) => f.name);
    // The end of the archive along the newest backup's line of timelines
    // (src/recovery/reach.ts archiveLine), not the newest segment of any
    // timeline: an old primary's WAL after a recovery is not what a drill replays.
    const newestBackup = backups[backups.length - 1];
    const lineFiles = newestBackup ? archiveLine(names, archive.histories, newestBackup).segments : names;
    const newestCommit = await newestArchivedCommit({ repo, cluster, pgBin: runbook.cluster.pgBin, files: lineFiles });
    return pickDrillTime(runbook, { backups, archived: new Set(names), newestCommit, after: input.after });
  });
}

/** A committed write in the promoted drill copy, read back (src/drill/instance.ts). Run twice: a second row in the drill's own table of a throwaway copy. */
export async function smokeWrite(input: { runbook: string; workflowId: string }): Promise<SmokeWriteResult> {
  return lifeboatActivity(async () => smoke(await loadRunbook(input.runbook), input));
}

/** Stops and removes this drill's copy; leaves anything not provably its own. Run twice: a second run finds the copy stopped or its directory gone, and reports what it left. */
export async function teardownDrill(input: { runbook: string; workflowId: string }): Promise<TeardownResult> {
  return lifeboatActivity(async () => teardown(await loadRunbook(input.runbook), input));
}

/**
 * restore-base-backup of a drill asked to use the warm standby: a clone of
 * the running standby (pg_basebackup from it) in drill.dataDir, which keeps
 * replaying; or `used: false` with why, and nothing touched (the drill then
 * restores a backup). Heartbeats pg_basebackup's progress while it copies.
 * Run twice: the drill's marker shows a finished clone, returned as it was;
 * pg_basebackup removes a copy it could not finish.
 */
export async function cloneStandbyForDrill(input: CloneStandbyInput): Promise<UseStandbyResult> {
  const ctx = Context.current();
  return lifeboatActivity(async () => {
    let last = 0;
    return clone(await loadRunbook(input.runbook), input, {
      signal: ctx.cancellationSignal,
      onProgress: (p) => {
        if (Date.now() - last < 1000) return;
        last = Date.now();
        heartbeat({
          ...p,
          text: `cloning the warm standby: ${Math.round(p.bytes / 1048576)} of ${Math.round(p.totalBytes / 1048576)} MiB`,
        });
      },
    });
  });
}

// What restoreDrill proxies must be what the worker registers.
const drillActivities: DrillActivities = { pickDrillTarget, smokeWrite, teardownDrill, cloneStandbyForDrill };
void drillActivities;
