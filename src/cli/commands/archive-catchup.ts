// `lifeboat archive-catchup --runbook <name>`: copies into every other
// repository of the runbook the WAL the first one holds and it lacks (a
// repository that was down under repositoryPolicy: primary, or one added to
// the list later). Reads the listings, not the archiving host's queue, so it
// runs anywhere the repositories are reachable; with --pg-wal it also clears
// that host's queue entries it made redundant. Then the base backups the
// first holds and another lacks (a copy that failed under repositoryPolicy:
// primary), as the backup identity, each file verified by sha256 and
// backup.json last (src/catalog/copy-backups.ts). Exit 0 when every
// repository holds every file and backup, 1 otherwise.
import * as path from 'node:path';
import { backupsMissingIn, copyBackup, type BackupCopy } from '../../catalog/copy-backups';
import { isComplete, readCatalog } from '../../catalog/catalog';
import { errorMessage } from '../../errors';
import { closeRepositories, openRepositories, repositoryLabel } from '../../repository/multi';
import type { Runbook } from '../../runbook/schema';
import { clusterName } from '../../runbook/schema';
import { catchUp, queueDirOf } from '../../wal/catchup';
import { requireRunbook, intOption, type RepoOptions } from '../context';
import { EXIT, printJson } from '../run';

export async function run(opts: RepoOptions & { pgWal?: string; parallel?: string; json?: boolean }): Promise<number> {
  const runbook = await requireRunbook(opts, 'archive-catchup');
  const cluster = opts.cluster ?? clusterName(runbook);
  const list = await openRepositories(runbook, 'archive');
  try {
    if (list.length < 2) {
      process.stderr.write(`runbook ${runbook.name} names one repository: nothing to catch up\n`);
      return EXIT.ok;
    }
    const results = await catchUp(list, cluster, {
      parallel: intOption(opts.parallel ?? '4', '--parallel'),
      ...(opts.pgWal ? { queueDir: queueDirOf(path.resolve(opts.pgWal)) } : {}),
      ...(opts.json ? {} : { log: (line: string) => process.stdout.write(`${line}\n`) }),
    });
    const backups = await catchUpBackups(
      runbook,
      cluster,
      opts.json ? undefined : (line) => process.stdout.write(`${line}\n`),
    );
    const ok = results.every((r) => r.failed.length === 0) && backups.every((b) => b.failed.length === 0);
    if (opts.json) printJson({ cluster, from: list[0]!.name, repositories: results, backups });
    else {
      for (const r of results)
        for (const f of r.failed.slice(0, 10)) process.stdout.write(`  ${r.name}: ${f.walFile}: ${f.error}\n`);
      for (const b of backups)
        for (const f of b.failed) process.stdout.write(`  ${b.name}: backup ${f.backupId}: ${f.error}\n`);
      if (!ok)
        process.stdout.write(
          `HINT: run again once the repository answers; lifeboat check --runbook ${runbook.name} reports how far behind each one is\n`,
        );
    }
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    closeRepositories(list);
  }
}

interface BackupCatchUp {
  name: string;
  url: string;
  copied: BackupCopy[];
  failed: Array<{ backupId: string; error: string }>;
}

/**
 * Copies into each other repository the complete backups the first holds and
 * it lacks, oldest first, as the backup identity (it reads the repository and
 * writes under base/, never deletes). A repository that fails is reported and
 * the next one is still caught up.
 */
async function catchUpBackups(
  runbook: Runbook,
  cluster: string,
  log?: (line: string) => void,
): Promise<BackupCatchUp[]> {
  const list = await openRepositories(runbook, 'backup');
  try {
    const [first, ...others] = list;
    const out: BackupCatchUp[] = [];
    let have;
    try {
      have = (await readCatalog(first!.repo, cluster)).filter(isComplete);
    } catch (err) {
      const error = `the backups of ${repositoryLabel(first!)} cannot be listed: ${errorMessage(err).split('\n', 1)[0]}`;
      return others.map((o) => ({ name: o.name, url: o.url, copied: [], failed: [{ backupId: '*', error }] }));
    }
    for (const o of others) {
      const r: BackupCatchUp = { name: o.name, url: o.url, copied: [], failed: [] };
      out.push(r);
      try {
        for (const entry of await backupsMissingIn(have, o.repo, cluster)) {
          try {
            r.copied.push(await copyBackup(first!.repo, o.repo, cluster, entry));
          } catch (err) {
            r.failed.push({ backupId: entry.backupId, error: errorMessage(err).split('\n', 1)[0] ?? '' });
          }
        }
      } catch (err) {
        r.failed.push({ backupId: '*', error: errorMessage(err).split('\n', 1)[0] ?? '' });
      }
      log?.(
        `${o.name} (${o.url}): backups: ${r.copied.length} copied${r.copied.length > 0 ? ` (${r.copied.map((c) => c.backupId).join(', ')})` : ''}, ${r.failed.length} failed`,
      );
    }
    return out;
  } finally {
    closeRepositories(list);
  }
}
