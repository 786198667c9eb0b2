// Archiver health on the primary, from pg_stat_archiver, judged against the
// runbook's RPO: WAL that is not archived exists only on the primary, and is
// lost with it.
//
// Ages are computed by the database (now() - last_archived_time), so a clock
// difference between this host and the primary cannot hide a stale archiver.
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { primaryClientConfig } from '../pg/connect';
import type { Runbook } from '../runbook/schema';
import { parseLsn, parseSegmentName } from '../wal/names';
import type { HealthProblem } from './chain';

export interface ArchiverSample {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedTime: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: string | null;
  statsReset: string | null;
  /** Seconds since the last successful archive, by the primary's clock. */
  archivedAgeSeconds: number | null;
  /** Seconds since the archiver's counters started (server start or stats reset). */
  watchedSeconds: number;
  inRecovery: boolean;
  archiveMode: string;
  archiveTimeoutSeconds: number;
  walSegmentSize: number;
  /**
   * Whether the last failure is newer than the last success, compared by the database to the microsecond
   * (the times above are to the second: a failure in the second of the last success would not show).
   */
  failedSinceArchived?: boolean;
  /** Current WAL write position, and the segment it is in (absent on a standby). */
  currentLsn?: string;
  currentWal?: string;
  /** Files waiting in pg_wal/archive_status (needs superuser or pg_monitor; absent otherwise). */
  readyFiles?: number;
  /** Size and file count of pg_wal, with readArchiverStatus's walDirectory (pg_ls_waldir: superuser or pg_monitor; absent otherwise). */
  walDirBytes?: number;
  walDirFiles?: number;
}

export interface ReadArchiverOptions {
  /** Also read the size of pg_wal (lifeboat metrics: WAL piling up while archiving fails). */
  walDirectory?: boolean;
  /** Bounds the connection and each statement (statement_timeout), for callers that must answer in time. */
  timeoutMs?: number;
}

export interface ArchiverStatus extends ArchiverSample {
  rpoSeconds: number;
  /** WAL written after the last archived segment; undefined when it cannot be told. */
  unarchivedBytes?: number;
  stale: boolean;
  failing: boolean;
  problems: HealthProblem[];
}

/** ISO 8601 to the second: what an operator compares with log lines. */
const iso = (d: unknown): string | null =>
  d instanceof Date ? d.toISOString().replace(/\.\d+Z$/, 'Z') : d == null ? null : String(d);

/** Reads pg_stat_archiver and the WAL position from the runbook's primary, and judges them. */
export async function readArchiverStatus(runbook: Runbook, opts: ReadArchiverOptions = {}): Promise<ArchiverStatus> {
  const p = runbook.cluster.primary;
  const bounded =
    opts.timeoutMs !== undefined ? { connectionTimeoutMillis: opts.timeoutMs, statement_timeout: opts.timeoutMs } : {};
  const client = new Client(primaryClientConfig(runbook, bounded));
  try {
    await client.connect();
  } catch (err) {
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `cannot connect to the primary ${p.user}@${p.host}:${p.port}/${p.database} to read pg_stat_archiver: ${errorMessage(err)}`,
      {
        hints: [
          'is the primary up, and does the runbook name the right host and port (cluster.primary)?',
          'lifeboat check --no-primary checks the repository alone',
        ],
        cause: err,
      },
    );
  }
  try {
    const { rows } = await client.query(
      `select a.archived_count::text as archived_count, a.last_archived_wal, a.last_archived_time,
              a.failed_count::text as failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
              extract(epoch from now() - a.last_archived_time)::float8 as archived_age,
              extract(epoch from now() - greatest(a.stats_reset, pg_postmaster_start_time()))::float8 as watched,
              coalesce(a.last_failed_time > a.last_archived_time, a.last_failed_time is not null) as failed_since_archived,
              pg_is_in_recovery() as in_recovery,
              current_setting('archive_mode') as archive_mode,
              (select setting from pg_settings where name = 'archive_timeout')::int as archive_timeout,
              (select setting from pg_settings where name = 'wal_segment_size')::bigint::text as wal_segment_size
         from pg_stat_archiver a`,
    );
    const r = rows[0] as Record<string, unknown>;
    const sample: ArchiverSample = {
      archivedCount: Number(r.archived_count),
      lastArchivedWal: (r.last_archived_wal as string | null) ?? null,
      lastArchivedTime: iso(r.last_archived_time),
      failedCount: Number(r.failed_count),
      lastFailedWal: (r.last_failed_wal as string | null) ?? null,
      lastFailedTime: iso(r.last_failed_time),
      statsReset: iso(r.stats_reset),
      archivedAgeSeconds: r.archived_age == null ? null : Number(r.archived_age),
      failedSinceArchived: r.failed_since_archived === true,
      watchedSeconds: Number(r.watched ?? 0),
      inRecovery: r.in_recovery === true,
      archiveMode: String(r.archive_mode),
      archiveTimeoutSeconds: Number(r.archive_timeout),
      walSegmentSize: Number(r.wal_segment_size),
    };
    if (!sample.inRecovery) {
      // pg_current_wal_lsn() errors during recovery; on a primary it is where the next record goes.
      const pos = await client.query<{ lsn: string; walfile: string }>(
        'select pg_current_wal_lsn()::text as lsn, pg_walfile_name(pg_current_wal_lsn()) as walfile',
      );
      sample.currentLsn = pos.rows[0]?.lsn;
      sample.currentWal = pos.rows[0]?.walfile;
    }
    try {
      // Superuser or pg_monitor only; without it the count is simply unknown.
      const ready = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_ls_archive_statusdir() where name like '%.ready'`,
      );
      sample.readyFiles = ready.rows[0]?.n;
    } catch {
      /* not allowed: fine */
    }
    if (opts.walDirectory) {
      try {
        // pg_ls_waldir() lists the regular files of pg_wal (not archive_status/): superuser or pg_monitor.
        const dir = await client.query<{ bytes: string; files: number }>(
          'select coalesce(sum(size), 0)::bigint::text as bytes, count(*)::int as files from pg_ls_waldir()',
        );
        sample.walDirBytes = Number(dir.rows[0]?.bytes);
        sample.walDirFiles = dir.rows[0]?.files;
      } catch {
        /* not allowed: the size is unknown */
      }
    }
    return assessArchiver(sample, runbook.objectives.rpoSeconds);
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `reading pg_stat_archiver on ${p.host}:${p.port} failed: ${errorMessage(err)}`,
      {
        hints: [`the role ${p.user} needs to connect to ${p.database} and read pg_stat_archiver and pg_settings`],
        cause: err,
      },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Judges a sample: stale against the RPO, failing when the last failure is newer than the last success. */
export function assessArchiver(s: ArchiverSample, rpoSeconds: number): ArchiverStatus {
  const problems: HealthProblem[] = [];
  const unarchivedBytes = unarchived(s);
  const lastFailedMs = s.lastFailedTime ? Date.parse(s.lastFailedTime) : undefined;
  const lastArchivedMs = s.lastArchivedTime ? Date.parse(s.lastArchivedTime) : undefined;
  const failing =
    s.failedCount > 0 &&
    (s.failedSinceArchived ??
      (lastFailedMs !== undefined && (lastArchivedMs === undefined || lastFailedMs > lastArchivedMs)));
  const stale = s.archiveMode !== 'off' && archiveLagSeconds(s, unarchivedBytes) > rpoSeconds;

  if (s.inRecovery) {
    problems.push({
      kind: 'primary-in-recovery',
      message:
        "the runbook's primary is in recovery (a standby or a restore): its pg_stat_archiver does not show the primary's archiving",
      hints: ['point cluster.primary in the runbook at the current primary'],
    });
  }
  if (s.archiveMode === 'off') {
    problems.push({
      kind: 'archiving-off',
      message: 'archiving is off on the primary (archive_mode = off): no WAL reaches the repository',
      hints: [
        "set archive_mode = on and archive_command = 'lifeboat archive-push %p --runbook <name>' in postgresql.conf",
        'archive_mode needs a restart of PostgreSQL',
      ],
    });
  }
  if (failing) {
    problems.push({
      kind: 'archiver-failing',
      message: `archiver failing: ${s.failedCount} failure${s.failedCount === 1 ? '' : 's'}, last ${s.lastFailedWal ?? '(unknown)'} at ${s.lastFailedTime}`,
      hints: [
        s.lastArchivedWal
          ? `the last success was ${s.lastArchivedWal} at ${s.lastArchivedTime}`
          : 'nothing has been archived successfully since the counters started',
        'PostgreSQL keeps retrying; meanwhile WAL piles up in pg_wal, and a full disk stops the primary',
        'the PostgreSQL log says why: look for "archive command failed" and the lifeboat archive-push lines before it',
      ],
    });
  }
  if (stale) {
    const hints: string[] = [];
    if (s.currentLsn) hints.push(`WAL written since then, up to ${s.currentLsn}, exists only on the primary`);
    if (s.readyFiles !== undefined && s.readyFiles > 0) {
      hints.push(
        `${s.readyFiles} finished WAL file${s.readyFiles === 1 ? ' is' : 's are'} waiting in pg_wal/archive_status`,
      );
      if (!failing)
        hints.push(
          'yet the archiver reports no failure: is archive_command hanging (a stuck mount, an unreachable store)?',
        );
    } else if (s.readyFiles === 0) {
      hints.push(
        'no finished segment is waiting: the current one is not full yet, and PostgreSQL archives whole segments only',
      );
    } else if (!failing) {
      hints.push(
        'the archiver reports no failure: either the current segment is not full yet, or archive_command hangs',
      );
    }
    if (s.archiveTimeoutSeconds === 0 || s.archiveTimeoutSeconds > rpoSeconds) {
      hints.push(
        `archive_timeout is ${s.archiveTimeoutSeconds === 0 ? 'off' : `${s.archiveTimeoutSeconds} s`}: a quiet primary keeps a partly written segment unarchived; set it to at most ${rpoSeconds} s`,
      );
    }
    problems.push({
      kind: 'archiver-stale',
      message:
        s.archivedAgeSeconds === null
          ? `archiver stale: nothing archived in the ${Math.round(s.watchedSeconds)} s since the server started, RPO is ${rpoSeconds} s`
          : `archiver stale: last segment archived ${Math.round(s.archivedAgeSeconds)} s ago, RPO is ${rpoSeconds} s`,
      hints,
    });
  }
  return { ...s, rpoSeconds, ...(unarchivedBytes !== undefined ? { unarchivedBytes } : {}), stale, failing, problems };
}

/**
 * How long WAL written on the primary has waited unarchived: the time since the
 * last successful archive (or since the counters started), while anything
 * written after it is not archived or cannot be told to be. A quiet primary
 * that has archived everything it wrote lags 0, however long ago that was:
 * nothing is at risk. Against the RPO this is check's "stale".
 */
export function archiveLagSeconds(s: ArchiverSample, unarchivedBytes: number | undefined): number {
  const atRisk = unarchivedBytes === undefined || unarchivedBytes > 0;
  return atRisk ? (s.archivedAgeSeconds ?? s.watchedSeconds) : 0;
}

/** Bytes written after the end of the last archived segment, when the names allow telling. */
function unarchived(s: ArchiverSample): number | undefined {
  if (!s.currentLsn || !s.currentWal) return undefined;
  // Nothing archived yet: everything written is at risk.
  if (!s.lastArchivedWal) return Number(parseLsn(s.currentLsn));
  // Segments, and .partial/.backup files named after one; a .history file says nothing about position.
  const m = /^[0-9A-F]{24}/.exec(s.lastArchivedWal);
  if (!m) return undefined;
  const last = parseSegmentName(m[0], s.walSegmentSize);
  const current = parseSegmentName(s.currentWal, s.walSegmentSize);
  if (last.timeline !== current.timeline) return undefined;
  const archivedThrough = (last.segno + 1n) * BigInt(s.walSegmentSize);
  const diff = parseLsn(s.currentLsn) - archivedThrough;
  return diff > 0n ? Number(diff) : 0;
}
