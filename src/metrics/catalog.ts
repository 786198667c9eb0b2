// `lifeboat metrics`: what a Prometheus server scrapes from Lifeboat, per
// runbook (labels runbook and cluster), and where each figure comes from.
// This table is the only list of names the exporter writes: the README's
// metric table and example alert rules are tested against it
// (test/unit/metrics-readme.test.ts).
//
//   catalog.ts     the metrics: name, type, help, source
//   exposition.ts  Prometheus text format 0.0.4
//   sources.ts     reading each source (the primary, the repository, the evidence, Temporal)
//   collector.ts   per scrape: every source under a time limit, one read at a time, a short cache
//   server.ts      the HTTP endpoint
export const SOURCES = ['primary', 'repository', 'evidence', 'temporal'] as const;
export type Source = (typeof SOURCES)[number];

export interface MetricDef {
  type: 'gauge' | 'counter';
  help: string;
  /** Labels besides runbook and cluster. */
  labels: readonly string[];
  /** Which read produces it; 'runbook' for the figures copied from the runbook, 'exporter' for the exporter's own. */
  source: Source | 'runbook' | 'exporter';
}

export const METRICS = {
  // pg_stat_archiver on the primary (the one a recovery's overlay names, as lifeboat check reads it)
  lifeboat_archive_archived_total: {
    type: 'counter',
    source: 'primary',
    labels: [],
    help: "WAL files archived since the archiver's counters started (pg_stat_archiver.archived_count).",
  },
  lifeboat_archive_failed_total: {
    type: 'counter',
    source: 'primary',
    labels: [],
    help: 'Failed archive_command attempts since the counters started (pg_stat_archiver.failed_count).',
  },
  lifeboat_archive_failing: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: "1 while the archiver's last failure is newer than its last success, else 0.",
  },
  lifeboat_archive_last_archived_age_seconds: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: "Seconds since the last successful archive, by the primary's clock; absent when nothing was archived since the counters started.",
  },
  lifeboat_archive_lag_seconds: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: 'How long WAL written on the primary has waited unarchived: seconds since the last successful archive while WAL written after it is not archived, 0 when everything written is archived. Above the RPO, lifeboat check calls the archiver stale.',
  },
  lifeboat_archive_unarchived_bytes: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: 'WAL bytes written after the last archived segment (on the primary only); absent when it cannot be told.',
  },
  lifeboat_archive_ready_segments: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: 'Finished WAL files waiting for the archiver (.ready in pg_wal/archive_status); needs pg_monitor.',
  },
  lifeboat_wal_directory_bytes: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: 'Size of pg_wal on the primary (pg_ls_waldir()); needs pg_monitor.',
  },
  lifeboat_wal_directory_files: {
    type: 'gauge',
    source: 'primary',
    labels: [],
    help: 'Files in pg_wal on the primary (pg_ls_waldir()); needs pg_monitor.',
  },
  // the repository: backups and the WAL chain, as lifeboat check judges them
  lifeboat_backups_verified: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Verified base backups in the repository.',
  },
  lifeboat_backups_incomplete: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Backup directories that are not a verified backup (an upload that died, one being written).',
  },
  lifeboat_backup_newest_age_seconds: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Seconds since the newest verified base backup ended; absent when there is none.',
  },
  lifeboat_backup_newest_size_bytes: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Size of the data directory in the newest verified base backup (backup.json sizeBytes).',
  },
  lifeboat_backup_newest_stored_bytes: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Bytes the newest verified base backup takes in the repository, compressed (backup.json storedBytes).',
  },
  lifeboat_wal_gaps: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'Gaps in the archived WAL chain that a restore of a retained backup must replay through (lifeboat check names them).',
  },
  lifeboat_wal_missing_segments: {
    type: 'gauge',
    source: 'repository',
    labels: [],
    help: 'WAL segments missing in those gaps, in all.',
  },
  // the evidence records in the repository (<cluster>/evidence/)
  lifeboat_drill_last_success: {
    type: 'gauge',
    source: 'evidence',
    labels: [],
    help: '1 when the newest drill passed, 0 when it failed (a failed step or invariant, or a missed objective); absent when no drill was recorded.',
  },
  lifeboat_drill_last_age_seconds: {
    type: 'gauge',
    source: 'evidence',
    labels: [],
    help: 'Seconds since the newest drill finished.',
  },
  lifeboat_drill_last_rto_seconds: {
    type: 'gauge',
    source: 'evidence',
    labels: [],
    help: 'RTO the newest drill measured (start to writable).',
  },
  lifeboat_drill_last_rpo_seconds: {
    type: 'gauge',
    source: 'evidence',
    labels: [],
    help: 'RPO the newest drill measured (target minus the last replayed commit).',
  },
  lifeboat_evidence_unreadable: {
    type: 'gauge',
    source: 'evidence',
    labels: [],
    help: 'Objects under evidence/ that are not a readable record.',
  },
  // the runbook
  lifeboat_rpo_objective_seconds: {
    type: 'gauge',
    source: 'runbook',
    labels: [],
    help: "The runbook's objectives.rpoSeconds.",
  },
  lifeboat_rto_objective_seconds: {
    type: 'gauge',
    source: 'runbook',
    labels: [],
    help: "The runbook's objectives.rtoSeconds.",
  },
  // Temporal visibility and each waiting run's status query (as lifeboat pending reads them)
  lifeboat_recoveries_running: {
    type: 'gauge',
    source: 'temporal',
    labels: ['workflow'],
    help: 'Running recoverToPointInTime and repairFromPointInTime runs of the runbook (search attribute LifeboatRunbook).',
  },
  lifeboat_recoveries_waiting: {
    type: 'gauge',
    source: 'temporal',
    labels: [],
    help: 'Running recoveries and repairs that wait for a person: an approval, or a failed step waiting for retry, skip or abort.',
  },
  lifeboat_recovery_waiting_seconds: {
    type: 'gauge',
    source: 'temporal',
    labels: ['workflow_id', 'step', 'kind'],
    help: 'Per waiting run: seconds since it began to wait (kind approval or failed).',
  },
  // the exporter itself
  lifeboat_up: {
    type: 'gauge',
    source: 'exporter',
    labels: ['source'],
    help: '1 when the last read of the source succeeded in time, 0 when it failed or timed out (its figures are then absent).',
  },
  lifeboat_scrape_errors_total: {
    type: 'counter',
    source: 'exporter',
    labels: ['source'],
    help: 'Reads of the source that failed or timed out since the exporter started.',
  },
  lifeboat_scrape_duration_seconds: {
    type: 'gauge',
    source: 'exporter',
    labels: ['source'],
    help: 'How long the last read of the source took (up to the time limit).',
  },
} as const satisfies Record<string, MetricDef>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
