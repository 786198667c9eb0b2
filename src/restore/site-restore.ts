// What both restores do alike around the bytes (restore.ts from Lifeboat's
// own repository, engine-restore.ts through another engine): the site and
// the first heartbeat, the claim of the site's directory, the preparation's
// input, and the marker that makes the copy provably Lifeboat's.
import type { RestoreInput } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { takeClaim, type HeldClaim } from './claim';
import type { PrepareInput } from './data-dir';
import type { MarkerState, RestoreMarker } from './marker';
import type { RestoreHooks } from './restore';
import { restoreSite, type RestoreSite } from './site';

/** The site a restore writes (the runbook's restore, drill or standby instance), with its first heartbeat. */
export function beginRestore(
  runbook: Runbook,
  input: RestoreInput,
  hooks: Pick<RestoreHooks, 'onProgress'>,
): RestoreSite {
  const site = restoreSite(runbook, input.instance);
  hooks.onProgress({ phase: 'preparing', bytes: 0, totalBytes: 0 });
  return site;
}

/** The claim of the site's directory for this run (claim.ts); a drill's names its port too. */
export function claimSite(
  site: RestoreSite,
  input: RestoreInput,
  hooks: Pick<RestoreHooks, 'holderRunning'>,
): Promise<HeldClaim> {
  return takeClaim({
    dataDir: site.pg.dataDir,
    workflowId: input.workflowId,
    runId: input.runId,
    instance: site.instance,
    field: `${site.field}.dataDir`,
    ...(site.instance === 'drill' ? { port: site.port } : {}),
    ...(hooks.holderRunning ? { holderRunning: hooks.holderRunning } : {}),
  });
}

/** What data-dir.ts (or delta.ts) judges and prepares the directory with. */
export function prepareInput(runbook: Runbook, site: RestoreSite, input: RestoreInput): PrepareInput {
  return {
    pg: site.pg,
    runbookName: runbook.name,
    mode: input.mode,
    workflowId: input.workflowId,
    runId: input.runId,
    backupId: input.backupId,
    ...(site.instance !== 'restore' ? { instance: site.instance } : {}),
  };
}

/** The marker of this run's copy of the backup, in `state` as of now. */
export function siteMarker(
  site: RestoreSite,
  input: RestoreInput,
  state: MarkerState,
  backup: RestoreMarker['backup'],
  movedAside: string | undefined,
): RestoreMarker {
  return {
    workflowId: input.workflowId,
    runId: input.runId,
    backupId: input.backupId,
    state,
    at: new Date().toISOString(),
    mode: input.mode,
    ...(site.instance !== 'restore' ? { instance: site.instance } : {}),
    backup,
    ...(movedAside ? { movedAside } : {}),
  };
}
