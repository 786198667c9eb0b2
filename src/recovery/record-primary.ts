// After promote: the cluster's primary is the promoted copy. Two things make
// the repository say so at once, before any traffic moves:
//  1. the new timeline's history file is archived from the copy's pg_wal
//     (the copy's own archiver would do it too, if its archive_command works;
//     pushed here, archive-push refuses the old primary's next segment from
//     this moment, src/wal/superseded.ts);
//  2. the primary overlay (<cluster>/primary.json, src/catalog/primary.ts)
//     names restore.address:restore.port, for backup, check, drill,
//     checkpoint and the next recovery.
// Nothing of the running recovery reads the overlay: its later steps talk
// to the restored copy by restore.address, as they did before.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { writePrimaryOverlay } from '../catalog/primary';
import { errorMessage } from '../errors';
import { openRepository } from '../repository';
import { clusterName, type Runbook } from '../runbook/schema';
import { engineSetting } from '../runbook/engine';
import { historyFileName } from '../wal/names';
import { pushWalFile } from '../wal/push';
import type { PrimaryRecord } from './contract';

export interface RecordPrimaryInput {
  runbook: string;
  workflowId: string;
  runId: string;
  timeline: number;
  promotedAt: string;
}

/** Run twice: the history push is idempotent and the overlay is rewritten with the same facts (a fresh `since`). */
export async function recordPrimary(runbook: Runbook, input: RecordPrimaryInput): Promise<PrimaryRecord> {
  const cluster = clusterName(runbook);
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const named = runbook.cluster.primary;
  const r = runbook.restore;
  const replaced = { host: named.host, port: named.port };

  let history: string | undefined;
  const file = path.join(r.dataDir, 'pg_wal', historyFileName(input.timeline));
  if (input.timeline > 1 && engineSetting(runbook).kind !== 'lifeboat') {
    // The archive is the engine's: Lifeboat's repository gets no WAL. The promoted copy archives into the stanza itself (src/restore/engine-restore.ts).
    history = `${historyFileName(input.timeline)} not pushed: the WAL archive is pgBackRest's; the promoted copy archives it and its new timeline into the stanza itself (archive_mode on, pgbackrest archive-push)`;
  } else if (input.timeline > 1 && existsSync(file)) {
    try {
      history = `${historyFileName(input.timeline)} ${(await pushWalFile(repo, cluster, file)).result}`;
    } catch (err) {
      // The copy's own archiver retries it; the overlay is still worth writing.
      history = `${historyFileName(input.timeline)} not archived from ${file}: ${errorMessage(err).split('\n', 1)[0]}`;
    }
  }

  const base = { host: r.address, port: r.port, timeline: input.timeline, replaced, ...(history ? { history } : {}) };
  if (r.address === named.host && r.port === named.port) {
    // In place (or a restore site at the primary's own address): the runbook already names the new primary.
    return { repointed: false, ...base };
  }
  const since = new Date().toISOString();
  const key = await writePrimaryOverlay(repo, {
    cluster,
    runbook: runbook.name,
    host: r.address,
    port: r.port,
    replaced,
    timeline: input.timeline,
    promotedAt: input.promotedAt,
    since,
    workflowId: input.workflowId,
    runId: input.runId,
  });
  return { repointed: true, ...base, since, overlay: key };
}
