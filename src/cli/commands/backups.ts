// `lifeboat backups`: the catalog of base backups in a repository, oldest
// first. Incomplete directories are shown and flagged, never hidden: an
// operator deciding what to restore must see that one is unusable.
import { readCatalog, type CatalogEntry } from '../../catalog/catalog';
import { resolveRepoTarget, type RepoOptions } from '../context';
import { formatBytes, table } from '../format';
import { printJson } from '../run';
import { engineBackups } from './engine-views';

/** ISO time without milliseconds, readable in a table: 2026-11-21 19:01:02Z. */
export function shortTime(t: string): string {
  return t.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export async function run(opts: RepoOptions & { json?: boolean }): Promise<number> {
  const { runbook, repo, cluster } = await resolveRepoTarget(opts);
  // Another engine holds the backups (runbook engine:): its catalog (engine-views.ts).
  if (runbook?.engine && runbook.engine.kind !== 'lifeboat') return engineBackups(runbook, opts);
  const entries = await readCatalog(repo, cluster);
  if (opts.json) {
    printJson({ repository: repo.url, cluster, backups: entries });
    return 0;
  }
  if (entries.length === 0) {
    process.stdout.write(`no base backups of cluster ${cluster} in ${repo.url}\n`);
    return 0;
  }
  process.stdout.write(`${table(HEADERS, entries.map(row))}\n`);
  const complete = entries.filter((e) => e.status === 'complete').length;
  const bad = entries.filter((e): e is Extract<CatalogEntry, { status: 'incomplete' }> => e.status === 'incomplete');
  process.stdout.write(
    `\n${complete} verified backup${complete === 1 ? '' : 's'} of cluster ${cluster} in ${repo.url}\n`,
  );
  for (const e of bad) {
    process.stdout.write(
      `INCOMPLETE ${e.backupId}: ${e.problem}\n  HINT: restores, checks and expiry ignore it; if no backup is running, remove it by hand\n`,
    );
  }
  return 0;
}

const HEADERS = ['id', 'start time', 'end time', 'start LSN', 'end LSN', 'tli', 'size', 'stored', 'verified at'];

function row(e: CatalogEntry): string[] {
  if (e.status === 'incomplete') return [e.backupId, 'INCOMPLETE', '', '', '', '', '', formatBytes(e.storedBytes), ''];
  const m = e.meta;
  return [
    m.backupId,
    shortTime(m.startTime),
    shortTime(m.endTime),
    m.startLsn,
    m.endLsn,
    String(m.timeline),
    formatBytes(m.sizeBytes),
    formatBytes(e.storedBytes),
    shortTime(m.verifiedAt),
  ];
}
