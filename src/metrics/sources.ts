// Each source of `lifeboat metrics`, read with the functions lifeboat check,
// evidence and pending use, so the figures here and what those commands say
// can never disagree. A source returns its samples without the runbook and
// cluster labels (the collector adds them) or throws.
import type { Client } from '@temporalio/client';
import { archiveLagSeconds, readArchiverStatus } from '../catalog/archiver';
import { readChainState } from '../catalog/chain-state';
import { withPrimaryOverlay } from '../catalog/primary';
import { findPending } from '../cli/commands/pending';
import { readEvidenceHistory } from '../evidence/list';
import type { Evidence } from '../recovery/contract';
import { RECOVERY_WORKFLOW, REPAIR_WORKFLOW } from '../recovery/messages';
import { RUNBOOK_ATTRIBUTE } from '../recovery/search-attributes';
import type { Repository } from '../repository/types';
import type { Runbook } from '../runbook/schema';
import type { Sample } from './exposition';

export type SourceSample = Omit<Sample, 'labels'> & { labels?: Record<string, string> };

export interface MetricsTarget {
  runbook: Runbook;
  repo: Repository;
  cluster: string;
  /** The primary as last read with the overlay: used while the repository does not answer. */
  lastPrimary?: Runbook;
}

const seconds = (ms: number) => Math.max(0, Math.round(ms / 1000));

/** pg_stat_archiver and pg_wal on the primary (after a side-by-side recovery, the one the overlay names). */
export async function readPrimarySource(t: MetricsTarget, timeoutMs: number): Promise<SourceSample[]> {
  // The repository may be what is down: the archiver's figures matter most then. The primary known
  // from the last read of the overlay is used (else the runbook's), as activities do (loadRunbookWithPrimary).
  const runbook = await withPrimaryOverlay(t.runbook, t.repo).then(
    (o) => (t.lastPrimary = o.runbook),
    () => t.lastPrimary ?? t.runbook,
  );
  const a = await readArchiverStatus(runbook, { walDirectory: true, timeoutMs });
  const out: SourceSample[] = [
    { name: 'lifeboat_archive_archived_total', value: a.archivedCount },
    { name: 'lifeboat_archive_failed_total', value: a.failedCount },
    { name: 'lifeboat_archive_failing', value: a.failing ? 1 : 0 },
    { name: 'lifeboat_archive_lag_seconds', value: Math.round(archiveLagSeconds(a, a.unarchivedBytes)) },
  ];
  if (a.archivedAgeSeconds !== null)
    out.push({ name: 'lifeboat_archive_last_archived_age_seconds', value: Math.round(a.archivedAgeSeconds) });
  if (a.unarchivedBytes !== undefined)
    out.push({ name: 'lifeboat_archive_unarchived_bytes', value: a.unarchivedBytes });
  if (a.readyFiles !== undefined) out.push({ name: 'lifeboat_archive_ready_segments', value: a.readyFiles });
  if (a.walDirBytes !== undefined) out.push({ name: 'lifeboat_wal_directory_bytes', value: a.walDirBytes });
  if (a.walDirFiles !== undefined) out.push({ name: 'lifeboat_wal_directory_files', value: a.walDirFiles });
  return out;
}

/**
 * The catalog and the WAL chain, judged as lifeboat check judges them (src/catalog/chain-state.ts); for a
 * runbook whose backups another engine holds (engine: pgbackrest), as that engine lists them (src/engine/).
 */
export async function readRepositorySource(t: MetricsTarget, now: Date): Promise<SourceSample[]> {
  if (t.runbook.engine && t.runbook.engine.kind !== 'lifeboat') return readEngineSource(t, now);
  const { entries, complete, chain } = await readChainState(t.repo, t.cluster, t.runbook, now);
  return [
    { name: 'lifeboat_backups_incomplete', value: entries.length - complete.length },
    ...backupSamples(complete.length, chain.gaps, complete[complete.length - 1]?.meta, now),
  ];
}

/**
 * What every engine tells about its backups and the WAL: how many are
 * verified, the archive's gaps, and the newest backup's age and sizes (its
 * stored bytes: for a pgBackRest diff or incr backup, its own delta).
 */
function backupSamples(
  verified: number,
  gaps: ReadonlyArray<{ count: number }>,
  newest: { endTime: string; sizeBytes: number; storedBytes: number } | undefined,
  now: Date,
): SourceSample[] {
  const out: SourceSample[] = [
    { name: 'lifeboat_backups_verified', value: verified },
    { name: 'lifeboat_wal_gaps', value: gaps.length },
    { name: 'lifeboat_wal_missing_segments', value: gaps.reduce((n, g) => n + g.count, 0) },
  ];
  if (newest) {
    out.push(
      { name: 'lifeboat_backup_newest_age_seconds', value: seconds(now.getTime() - Date.parse(newest.endTime)) },
      { name: 'lifeboat_backup_newest_size_bytes', value: newest.sizeBytes },
      { name: 'lifeboat_backup_newest_stored_bytes', value: newest.storedBytes },
    );
  }
  return out;
}

/** The newest drill's record; `known` keeps records read by earlier scrapes (they never change). */
export async function readEvidenceSource(
  t: MetricsTarget,
  now: Date,
  known: Map<string, Evidence>,
): Promise<SourceSample[]> {
  const { records, unreadable } = await readEvidenceHistory(t.repo, t.cluster, known);
  const out: SourceSample[] = [{ name: 'lifeboat_evidence_unreadable', value: unreadable.length }];
  // Oldest first by start: the last drill is the newest.
  const last = records.filter((r) => r.kind === 'drill' && !r.dryRun).pop();
  if (last) {
    out.push(
      { name: 'lifeboat_drill_last_success', value: last.validationStatus === 'passed' ? 1 : 0 },
      { name: 'lifeboat_drill_last_age_seconds', value: seconds(now.getTime() - Date.parse(last.finishedAt)) },
    );
    if (last.rtoObservedSeconds !== undefined)
      out.push({ name: 'lifeboat_drill_last_rto_seconds', value: last.rtoObservedSeconds });
    if (last.rpoObservedSeconds !== undefined)
      out.push({ name: 'lifeboat_drill_last_rpo_seconds', value: last.rpoObservedSeconds });
  }
  return out;
}

/** Running recoveries and repairs of the runbook (visibility), and those waiting for a person (lifeboat pending's reading). */
export async function readTemporalSource(
  t: MetricsTarget,
  client: Client,
  now: Date,
  timeoutMs: number,
): Promise<SourceSample[]> {
  const runbook = `${RUNBOOK_ATTRIBUTE.name} = '${t.runbook.name.replace(/'/g, "\\'")}'`;
  const running = await Promise.all(
    [RECOVERY_WORKFLOW, REPAIR_WORKFLOW].map(async (workflow) => {
      const { count } = await client.workflow.count(
        `WorkflowType = '${workflow}' AND ExecutionStatus = 'Running' AND ${runbook}`,
      );
      return { name: 'lifeboat_recoveries_running' as const, labels: { workflow }, value: count };
    }),
  );
  // A status query that does not answer (no worker polling) leaves that run counted, without its waiting time,
  // rather than the whole read late: a quarter of the time limit each.
  const pending = await findPending(client, t.runbook.name, undefined, Math.max(1000, Math.floor(timeoutMs / 4)));
  const out: SourceSample[] = [...running, { name: 'lifeboat_recoveries_waiting', value: pending.length }];
  for (const p of pending) {
    // A run whose status query did not answer is counted, but since when it waits is not known.
    if (!p.pending) continue;
    out.push({
      name: 'lifeboat_recovery_waiting_seconds',
      labels: { workflow_id: p.workflowId, step: p.pending.step, kind: p.pending.kind },
      value: seconds(now.getTime() - Date.parse(p.pending.since)),
    });
  }
  return out;
}

/** Another engine's backups (oldest first) and archive gaps; what it does not tell (incomplete backups) is left out. */
async function readEngineSource(t: MetricsTarget, now: Date): Promise<SourceSample[]> {
  const { openEngine } = await import('../engine');
  const engine = await openEngine(t.runbook, { repo: t.repo });
  const backups = await engine.listBackups();
  const archive = await engine.readArchive(backups);
  return backupSamples(backups.length, archive.gaps, backups[backups.length - 1], now);
}
