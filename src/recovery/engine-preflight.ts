// Preflight of a recovery on a runbook whose backups another engine holds
// (engine: pgbackrest, src/engine/): what can be checked through the engine's
// own commands is checked, and the result says what was skipped and why.
//   checked   the backup for the target (the engine's catalog, the same
//             choice rules as Lifeboat's own), the archive of the backup's
//             timeline from its first segment on, no gap a restore of it
//             would cross (the engine's archive report), and whether the
//             archive reaches the target (src/recovery/reach.ts over segments
//             pgbackrest archive-get fetches; the primary switches WAL and
//             preflight waits for pgBackRest to list it before refusing)
//   skipped   the privileges recorded in a Lifeboat backup's metadata
//             (pgBackRest records none)
// The archiver's health is read from the primary as for Lifeboat's own.
import { readArchiverStatus } from '../catalog/archiver';
import { openEngine, PgBackRestEngine } from '../engine';
import { withStanzaSegments } from '../engine/pgbackrest/segments';
import type { EngineBackup } from '../engine/types';
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import { timelineUnreachableError, unreachableLatest } from '../restore/engine-timeline';
import { clusterName, type Runbook } from '../runbook/schema';
import { parseSegmentName } from '../wal/names';
import type { WaldumpCache } from './archive-records';
import { describeTarget, type PreflightInput, type PreflightResult } from './contract';
import { checkTargetReach } from './reach';
import { refusalAfterSwitch, switchWalAndAwaitArchive } from './switch-wal';
import { estimateRtoSeconds } from './plan';

/** What an engine's preflight does not check, said in its warnings. */
export function skippedOnEngine(label: string): string {
  return (
    `preflight on ${label} skipped: the role's privileges in the backup ` +
    `(pgBackRest records no privilege record; lifeboat grants prints what the role needs)`
  );
}

export async function preflightOnEngine(runbook: Runbook, input: PreflightInput): Promise<PreflightResult> {
  const cluster = clusterName(runbook);
  const engine = await openEngine(runbook);
  const archiverRead = readArchiverStatus(runbook).then(
    (s) => ({ ok: true as const, s }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  const backups = await engine.listBackups();
  const backup = engine.chooseBackup(backups, input.target, input.backupId);
  const meta = backups.find((b) => b.backupId === backup.backupId)!;
  // A backup past the fork of the stanza's newest timeline cannot follow it (src/restore/engine-timeline.ts): refused before the fence.
  if (engine instanceof PgBackRestEngine) {
    const unreachable = unreachableLatest(meta, (await engine.walFiles()).histories);
    if (unreachable) throw timelineUnreachableError(meta, unreachable, engine.command);
  }
  const archive = await engine.readArchive(backups);
  const gaps = archive.gaps.filter((g) => g.neededBy.includes(meta.backupId));
  if (gaps.length > 0) {
    throw new LifeboatError(
      'WAL_GAP',
      `the WAL archive of ${engine.label} cannot carry backup ${meta.backupId} to ${describeTarget(input.target)}: ${gaps.map((g) => `timeline ${g.timeline} lacks ${g.count} segment(s) ${g.first} .. ${g.last}`).join('; ')}`,
      { hints: [...new Set(archive.problems.flatMap((p) => p.hints))], details: { gaps } },
    );
  }
  const line = archive.timelines.find((t) => t.timeline === meta.timeline);
  if (!line?.last || line.last < meta.endWal) {
    throw new LifeboatError(
      'WAL_GAP',
      `the WAL archive of ${engine.label} ends before backup ${meta.backupId} is consistent: it needs ${meta.startWal} .. ${meta.endWal}, timeline ${meta.timeline} has ${line?.first ? `${line.first} .. ${line.last}` : 'no segment'}`,
      { hints: [`pgbackrest --stanza=... check shows whether the primary's archive_command reaches the stanza`] },
    );
  }
  // Segment names are numbered by the archive's segment size, which pgBackRest does not record (read from a segment).
  const segSize = archive.chain.walSegmentSize;
  const reach =
    engine instanceof PgBackRestEngine
      ? await reachOnStanza(runbook, engine, { ...meta, walSegmentSize: segSize }, input.target)
      : { warnings: [], notes: [] as string[] };
  const newest = archive.timelines[archive.timelines.length - 1]!;
  const segments = archive.timelines.filter((t) => t.timeline >= meta.timeline).reduce((n, t) => n + t.segmentCount, 0);
  const walTo = newest.last ?? line.last;
  const warnings: string[] = [
    skippedOnEngine(engine.label),
    ...archive.notes.map((n) => `${engine.kind}: ${n}`),
    ...reach.warnings,
    ...reach.notes,
  ];
  let primaryReachable = false;
  let archiver: string;
  let archiverProblems: string[] | undefined;
  const read = await archiverRead;
  if (read.ok) {
    primaryReachable = true;
    archiver =
      read.s.problems.length === 0
        ? `healthy: last archived ${read.s.lastArchivedWal ?? '(none)'} ${read.s.archivedAgeSeconds ?? '?'}s ago`
        : read.s.problems.map((p) => p.message).join('; ');
    for (const p of read.s.problems) warnings.push(`archiver: ${p.message}`);
    archiverProblems = read.s.problems.map((p) => p.message);
  } else {
    archiver = `not read: ${(isLifeboatError(read.err) ? read.err.what : errorMessage(read.err)).split('\n')[0]}`;
    // A drill has no gate steps: it only reports that the archiver's health is unknown.
    warnings.push(
      input.instance === 'drill'
        ? `the primary does not answer (${archiver.slice(10)}): archiver health unknown`
        : `the primary does not answer (${archiver.slice(10)}): the gate steps will fail and can be skipped with a reason`,
    );
  }
  const walBytes = segmentsBetween(meta.startWal, walTo, segSize) * segSize;
  return {
    runbook,
    cluster,
    backup,
    walFrom: meta.startWal,
    walTo,
    walSegmentsAvailable: segments,
    primaryReachable,
    archiver,
    ...(archiverProblems ? { archiverProblems } : {}),
    rtoEstimateSeconds: estimateRtoSeconds(backup.sizeBytes, walBytes),
    ...(reach.restorePointLsn ? { restorePointLsn: reach.restorePointLsn } : {}),
    warnings: [
      `restoring to ${describeTarget(input.target)} from ${engine.label} backup ${backup.backupId}: ${backup.why}`,
      ...warnings,
    ],
  };
}

/**
 * Whether the stanza's archive reaches the target, as Lifeboat's own
 * preflight asks it of its repository: a refusal (TARGET_UNREACHABLE) stands
 * only after the primary has switched WAL and pgBackRest lists the segment it
 * closed, or the primary could not (the refusal's hints say which).
 */
async function reachOnStanza(
  runbook: Runbook,
  engine: PgBackRestEngine,
  backup: EngineBackup & { walSegmentSize: number },
  target: PreflightInput['target'],
): Promise<{ warnings: string[]; notes: string[]; restorePointLsn?: string }> {
  return withStanzaSegments(runbook, async (source) => {
    const cache: WaldumpCache = new Map();
    const reach = async () => {
      const { files, histories } = await engine.walFiles();
      return checkTargetReach({
        source,
        cluster: clusterName(runbook),
        pgBin: runbook.cluster.pgBin,
        runbookName: runbook.name,
        backup,
        target,
        files,
        histories,
        cache,
      });
    };
    let reached = await reach();
    // A restore point target: where replay stops, for a standby taken over instead of a restore (src/standby/adopt.ts).
    const found = () => (reached.restorePoint ? { restorePointLsn: reached.restorePoint.lsn } : {});
    if (!reached.refusal) return { warnings: reached.warnings, notes: [], ...found() };
    const sw = await switchWalAndAwaitArchive(runbook, async (segment) =>
      (await engine.walFiles()).files.includes(segment),
    );
    if (sw.archived) reached = await reach();
    if (reached.refusal) throw refusalAfterSwitch(reached.refusal, sw.note);
    return { warnings: reached.warnings, notes: [sw.note], ...found() };
  });
}

/** Segments from `from` to `to` inclusive, by segment number (timelines aside): an estimate for the RTO. */
function segmentsBetween(from: string, to: string, segSize: number): number {
  try {
    const a = parseSegmentName(from, segSize).segno;
    const b = parseSegmentName(to, segSize).segno;
    return b >= a ? Number(b - a) + 1 : 1;
  } catch {
    return 1;
  }
}
