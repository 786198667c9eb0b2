// Preflight's look at the restore site (restore.dataDir and restore.port, or
// the drill's): will restore-base-backup and replay-wal be able to use them?
// Asked before anything is fenced, so a previous recovery's copy still
// running in the directory, a stranger's files there, or another server on
// the port end the run with nothing touched, instead of after the fence.
//
// The judgement is the restore's own (data-dir.ts judgeDataDir, claim.ts,
// port.ts): what the restore would handle (an empty or absent directory, this
// workflow's earlier copy, a stopped earlier drill's copy, in-place's primary
// directory) passes; what it would refuse is refused here, in the same words,
// with "start the run again" where the restore says "retry the step".
// Reads only: readdir, the marker and claim files, pg_ctl status, a TCP
// connect, ss.
import type { RestoreSiteInput } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { requireClaimable, type ClaimRequest } from './claim';
import { engineSetting } from '../runbook/engine';
import { deltaRefused } from './delta';
import { earlierDrillRunning, judgeDataDir, notEmpty, promotedOurs, type PrepareInput } from './data-dir';
import { requireFreePort } from './port';
import { postmasterRunning } from './postmaster';
import { restoreSite } from './site';

/** What the run is, for the judgement: a workflow that has not restored yet is nobody's owner. */
export interface SiteRun {
  workflowId: string;
  runId: string;
  /** The run's mode (the input's, else the runbook's restore.mode). */
  mode: 'side-by-side' | 'in-place';
}

/** How a refusal here ends: the run is over, so the operator starts a new one. */
export function startAgain(runbook: Runbook, instance: RestoreSiteInput['instance']): string {
  return instance === 'drill'
    ? `start the drill again (lifeboat drill --runbook ${runbook.name})`
    : 'start the recovery again';
}

/**
 * Refuses (DATA_DIR_NOT_EMPTY, PORT_IN_USE) a site the restore could not
 * use. Returns what it found, for the step's summary.
 */
export async function checkSiteFree(
  runbook: Runbook,
  input: RestoreSiteInput,
  hooks: { holderRunning?: ClaimRequest['holderRunning'] } = {},
): Promise<string> {
  const site = restoreSite(runbook, input.instance);
  const run: SiteRun = {
    workflowId: input.workflowId ?? '(unknown workflow)',
    runId: input.runId ?? '(unknown run)',
    mode: site.instance === 'drill' ? 'side-by-side' : (input.mode ?? site.mode),
  };
  const then = startAgain(runbook, input.instance);
  const prep: PrepareInput = {
    pg: site.pg,
    runbookName: runbook.name,
    mode: run.mode,
    workflowId: run.workflowId,
    runId: run.runId,
    backupId: input.backupId,
    ...(site.instance === 'drill' ? { instance: 'drill' as const } : {}),
  };
  // In place the directory and the port are the primary's by design: the
  // restore stops it and moves its directory aside after the fence.
  if (run.mode === 'in-place') {
    // pgbackrest restore --delta would overwrite it in place: refused before the fence (delta.ts prepareForDelta).
    const e = engineSetting(runbook);
    if (e.kind === 'pgbackrest' && e.delta === true && (await judgeDataDir(prep)).kind === 'in-place')
      throw deltaRefused(prep, "the primary's directory", then);
    return `${site.field}.dataDir ${site.dataDir}: in place, the primary's directory is moved aside after the fence`;
  }
  // A drill kept with keep: true leaves its claim; Temporal says whether its run is over (then the restore takes it over).
  await requireClaimable(
    {
      dataDir: site.dataDir,
      workflowId: run.workflowId,
      runId: run.runId,
      instance: site.instance,
      field: `${site.field}.dataDir`,
      ...(hooks.holderRunning ? { holderRunning: hooks.holderRunning } : {}),
    },
    then,
  );
  const found = await judgeDataDir(prep);
  let dir: string;
  switch (found.kind) {
    case 'foreign':
      throw await notEmpty(prep, found.entries, found.marker, then);
    case 'ours':
      if (found.marker.state === 'promoted') throw promotedOurs(prep, found.marker, then);
      dir = `holds this workflow's earlier copy, which the restore moves aside`;
      break;
    case 'earlier-drill':
      if (await postmasterRunning(site.pg)) throw earlierDrillRunning(prep, found.marker);
      dir = `holds an earlier drill's stopped copy, which the restore moves aside`;
      break;
    case 'in-place':
      dir = "is the primary's directory";
      break;
    case 'empty':
      dir = 'is empty or absent';
      break;
  }
  await requireFreePort(site, run.workflowId, then);
  return `${site.field}.dataDir ${site.dataDir} ${dir}; ${site.field}.port ${site.port} is free`;
}
