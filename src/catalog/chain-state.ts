// What a repository says about one cluster's recoverability: its backups
// (verified and not), its WAL archive and the continuity of the WAL chain from
// the oldest verified backup (or, with tiered retention, from the window on).
// Read by `lifeboat check` and `lifeboat metrics`, so that both judge the
// same chain the same way.
import type { Runbook } from '../runbook/schema';
import type { Repository } from '../repository/types';
import {
  isComplete,
  readCatalog,
  readWalArchive,
  type CatalogEntry,
  type CompleteEntry,
  type WalArchive,
} from './catalog';
import { analyzeChain, type ChainReport } from './chain';
import { continuityFrom } from './retention';
import { retentionPolicy } from './tiers';

export interface ChainState {
  entries: CatalogEntry[];
  /** Verified backups, oldest first. */
  complete: CompleteEntry[];
  archive: WalArchive;
  /** With runbook retention: tiers, the backup from which continuity is due, and the note saying so. */
  window?: { backupId: string; note: string };
  chain: ChainReport;
}

export async function readChainState(
  repo: Repository,
  cluster: string,
  runbook?: Runbook,
  now = new Date(),
): Promise<ChainState> {
  const [entries, archive] = await Promise.all([readCatalog(repo, cluster), readWalArchive(repo, cluster)]);
  const complete = entries.filter(isComplete);
  // Tiered retention expires the WAL between old backups on purpose: continuity is due from the window on.
  const window = runbook?.retention
    ? continuityFrom(entries, archive.files, retentionPolicy(runbook), now.toISOString())
    : undefined;
  const chain = chainOfCatalog(archive, complete, window?.backupId);
  return { entries, complete, archive, ...(window ? { window } : {}), chain };
}

/**
 * The chain check of a repository's archive for its verified backups (oldest
 * first); with tiered retention, continuous from `continuousFrom` on (each
 * backup's endWal counts only then).
 */
export function chainOfCatalog(
  archive: WalArchive,
  complete: readonly CompleteEntry[],
  continuousFrom?: string,
): ChainReport {
  return analyzeChain({
    walFiles: archive.files.map((f) => f.name),
    histories: archive.histories,
    backups: complete.map((e) => ({
      backupId: e.backupId,
      timeline: e.meta.timeline,
      startWal: e.meta.startWal,
      startLsn: e.meta.startLsn,
      endWal: e.meta.endWal,
    })),
    walSegmentSize: complete[complete.length - 1]?.meta.walSegmentSize,
    ...(continuousFrom ? { continuousFrom } : {}),
  });
}
