// `lifeboat check` for a runbook with several repositories (`repositories:`):
// each repository after the first is checked on its own (its backups, its
// WAL chain from its oldest verified backup) and against the first (WAL
// files the first holds and it lacks: how far behind, and since when).
// The first repository is checked by check.ts as a single one always was.
import { errorMessage } from '../errors';
import { closeRepositories, openEntry, repositoryLabel, type OpenedRepository } from '../repository/multi';
import type { Runbook } from '../runbook/schema';
import { repositoryLag, type RepositoryLag } from '../wal/catchup';
import { isComplete, readCatalog, readWalArchive, type CompleteEntry } from './catalog';
import { describeChainProblems, type ChainReport, type HealthProblem } from './chain';
import { chainOfCatalog } from './chain-state';

export interface RepositoryReport {
  name: string;
  url: string;
  reachable: boolean;
  error?: string;
  verifiedBackups: string[];
  chain?: ChainReport;
  /** Against the first repository; absent for the first itself. */
  behind?: { files: number; first?: string; last?: string; since?: string };
  /** Verified backups of the first repository this one does not hold complete (archive-catchup copies them). */
  missingBackups?: string[];
}

export interface RepositoriesCheck {
  reports: RepositoryReport[];
  problems: HealthProblem[];
  lines: string[];
}

/** Checks repositories 2..n; `first` is the first one, already open. */
export async function checkOtherRepositories(
  runbook: Runbook,
  first: OpenedRepository,
  cluster: string,
  now = new Date(),
): Promise<RepositoriesCheck> {
  const others = await Promise.all(runbook.repositories.slice(1).map((e, i) => openEntry(e, i + 1)));
  try {
    const out: RepositoriesCheck = { reports: [], problems: [], lines: [] };
    let lags: RepositoryLag[] = [];
    const reachable: OpenedRepository[] = [];
    let firstBackups: CompleteEntry[] | undefined;
    try {
      firstBackups = (await readCatalog(first.repo, cluster)).filter(isComplete);
    } catch {
      // The first repository's own check reports it.
    }
    for (const o of others) {
      const report: RepositoryReport = { name: o.name, url: o.url, reachable: true, verifiedBackups: [] };
      out.reports.push(report);
      try {
        const [entries, archive] = await Promise.all([readCatalog(o.repo, cluster), readWalArchive(o.repo, cluster)]);
        const complete = entries.filter(isComplete);
        report.verifiedBackups = complete.map((e) => e.backupId);
        if (firstBackups) {
          const theirs = new Set(report.verifiedBackups);
          report.missingBackups = firstBackups.map((e) => e.backupId).filter((id) => !theirs.has(id));
          if (report.missingBackups.length > 0) {
            out.problems.push({
              kind: 'repository-backups-missing',
              message:
                `repository ${repositoryLabel(o)} lacks ${report.missingBackups.length} verified backup${report.missingBackups.length === 1 ? '' : 's'} ` +
                `that ${first.name} holds: ${report.missingBackups.join(', ')}`,
              hints: [
                `to copy them now (each file verified by sha256, backup.json last): lifeboat archive-catchup --runbook ${runbook.name}`,
                'until then a recovery that falls back to it cannot start from them',
              ],
            });
          }
        }
        report.chain = chainOfCatalog(archive, complete);
        for (const p of describeChainProblems(
          report.chain,
          complete[complete.length - 1]?.backupId,
          `--runbook ${runbook.name}`,
        )) {
          out.problems.push({ ...p, message: `repository ${repositoryLabel(o)}: ${p.message}` });
        }
        if (complete.length === 0) {
          out.problems.push({
            kind: 'no-backup',
            message: `repository ${repositoryLabel(o)}: no verified base backup of cluster ${cluster}: a recovery that falls back to it has nothing to restore`,
            hints: [`lifeboat backup --runbook ${runbook.name} copies each new backup into every repository`],
          });
        }
        reachable.push(o);
      } catch (err) {
        report.reachable = false;
        report.error = errorMessage(err).split('\n', 1)[0] ?? '';
        out.problems.push({
          kind: 'repository-unreachable',
          message: `repository ${repositoryLabel(o)} cannot be read: ${report.error}`,
          hints: [
            'archive-push queues WAL for it under repositoryPolicy: primary (fails under all) until it answers; recoveries fall back past it',
          ],
        });
      }
    }
    try {
      lags = await repositoryLag([first, ...reachable], cluster);
    } catch (err) {
      out.problems.push({
        kind: 'repository-unreachable',
        message: `repository ${repositoryLabel(first)} cannot be listed: ${errorMessage(err).split('\n', 1)[0]}`,
        hints: [],
      });
    }
    for (const lag of lags) {
      const report = out.reports.find((r) => r.name === lag.name)!;
      report.behind = {
        files: lag.missing.length,
        ...(lag.missing.length > 0 ? { first: lag.missing[0], last: lag.missing[lag.missing.length - 1] } : {}),
        ...(lag.since ? { since: lag.since.toISOString() } : {}),
      };
      if (lag.missing.length === 0) continue;
      const ago = lag.since
        ? ` since ${lag.since.toISOString()} (${Math.max(0, Math.round((now.getTime() - lag.since.getTime()) / 1000))} s ago)`
        : '';
      out.problems.push({
        kind: 'repository-behind',
        message:
          `repository ${repositoryLabel(lag)} is behind ${first.name}: ${lag.missing.length} WAL file${lag.missing.length === 1 ? '' : 's'} missing, ` +
          `${lag.missing[0]}${lag.missing.length > 1 ? ` .. ${lag.missing[lag.missing.length - 1]}` : ''}${ago}`,
        hints: [
          `archive-push copies queued files into it once it answers (repositoryPolicy: primary); to copy them now: lifeboat archive-catchup --runbook ${runbook.name}`,
          'until then a recovery that falls back to it can replay only up to its first missing file',
        ],
      });
    }
    for (const r of out.reports) {
      if (!r.reachable) {
        out.lines.push(`repository ${r.name} (${r.url}): unreachable: ${r.error}`);
        continue;
      }
      const tls = r.chain?.timelines ?? [];
      const newest = tls
        .map((t) => t.lastSegment)
        .filter(Boolean)
        .sort()
        .pop();
      const behind =
        r.behind && r.behind.files > 0
          ? `${r.behind.files} WAL files behind ${first.name} since ${r.behind.since ?? 'unknown'}`
          : `up to date with ${first.name}`;
      const lacks =
        r.missingBackups && r.missingBackups.length > 0
          ? `, lacks backup${r.missingBackups.length === 1 ? '' : 's'} ${r.missingBackups.join(', ')}`
          : '';
      out.lines.push(
        `repository ${r.name} (${r.url}): ${r.verifiedBackups.length} verified backup${r.verifiedBackups.length === 1 ? '' : 's'}${lacks}, newest WAL ${newest ?? 'none'}, ${behind}`,
      );
    }
    return out;
  } finally {
    closeRepositories(others);
  }
}
