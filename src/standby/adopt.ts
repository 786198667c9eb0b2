// A recovery takes the warm standby over instead of restoring a base backup
// (DESIGN.md §4.4): the restore-base-backup step of recoverToPointInTime,
// when the runbook declares a standby.
//
// Only when it is provably safe: the standby healthy, its replay position
// BEFORE the target (PostgreSQL cannot replay backwards: a standby past the
// target is useless for it), restore.dataDir absent or empty, and both
// directories on one file system. Then replay on the standby is paused, its
// postmaster stopped, and its data directory renamed into restore.dataDir,
// with a marker naming this recovery: from there replay-wal, invariants,
// promote, the gates, traffic and the primary overlay find the copy where
// they always do (restore.dataDir, restore.port, restore.address), and
// replay-wal's recovery settings replace the standby's (the apply delay goes,
// the target comes in; on a pgBackRest stanza its restore_command and
// archive settings are pointed at restore.dataDir first, ./copy.ts).
// Otherwise nothing is changed and the recovery restores a backup, with the
// reason in its evidence.
//
// Run twice: markers say how far a dead attempt got. The standby's marker
// names the recovery (`adoptedBy`) before the rename; the recovery's marker
// in restore.dataDir afterwards; a retry finishes from either.
import { readdir, rename, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isComplete, readCatalog, readWalArchive } from '../catalog/catalog';
import type { SegmentSource } from '../drill/newest-commit';
import { openEngine, PgBackRestEngine } from '../engine';
import { withStanzaSegments } from '../engine/pgbackrest/segments';
import { errorMessage, isLifeboatError } from '../errors';
import {
  describeTarget,
  type RestoreResult,
  type StandbySource,
  type Target,
  type UseStandbyInput,
  type UseStandbyResult,
} from '../recovery/contract';
import { checkTargetReach } from '../recovery/reach';
import { openRepository } from '../repository';
import { takeClaim } from '../restore/claim';
import { readMarker, writeMarker, type RestoreMarker } from '../restore/marker';
import { stopPostmaster } from '../restore/postmaster';
import { restoreSite } from '../restore/site';
import { engineSetting } from '../runbook/engine';
import { clusterName, type Runbook } from '../runbook/schema';
import { formatLsn, parseLsn, segmentName, segnoOfLsn } from '../wal/names';
import { formatDelay, standbyOwner } from './conf';
import { copyDirectoryProblem, markStandbyCopy, pointCopyAtItself } from './copy';
import { readStandbyStatus, standbyClient } from './status';

/** The standby's marker while a recovery takes it over. */
type AdoptingMarker = RestoreMarker & { adoptedBy?: { workflowId: string; runId: string; source: StandbySource } };

/** How long pg_wal_replay_pause() may take to be honoured (it is, between two records). */
const PAUSE_WAIT_MS = 30_000;

export async function useStandby(runbook: Runbook, input: UseStandbyInput): Promise<UseStandbyResult> {
  const restore = restoreSite(runbook, 'restore');
  const standby = restoreSite(runbook, 'standby');
  // A retry: this recovery already took it over (the marker in restore.dataDir says so).
  const there = (await readMarker(restore.dataDir)) as AdoptingMarker | undefined;
  if (there?.workflowId === input.workflowId && there.result?.standby)
    return { used: true, why: usedWhy(there.result.standby, input.target, runbook), result: there.result };
  if (there?.workflowId === standbyOwner(runbook) && there.adoptedBy?.workflowId === input.workflowId) {
    return {
      used: true,
      why: usedWhy(there.adoptedBy.source, input.target, runbook),
      result: await markOurs(runbook, input, there, there.adoptedBy.source),
    };
  }
  const reason = await whyNot(runbook, input);
  if (reason) return { used: false, why: reason };

  // The claims of both directories, as restore-base-backup takes them: of
  // two racing recoveries one goes on, and a standby build in progress
  // (which holds the standby's claim) is never taken over.
  let claim;
  let standbyClaim;
  try {
    claim = await takeClaim({
      dataDir: restore.dataDir,
      workflowId: input.workflowId,
      runId: input.runId,
      instance: 'restore',
      field: 'restore.dataDir',
    });
    standbyClaim = await takeClaim({
      dataDir: standby.dataDir,
      workflowId: input.workflowId,
      runId: input.runId,
      instance: 'standby',
      field: 'standby.dataDir',
    }).catch(async (err: unknown) => {
      await claim!.release().catch(() => undefined);
      throw err;
    });
  } catch (err) {
    if (isLifeboatError(err))
      return {
        used: false,
        why: `a directory is claimed by another restore or a standby build (${err.what.split('\n')[0]})`,
      };
    throw err;
  }
  try {
    const status = await readStandbyStatus(runbook);
    if (!status.healthy || !status.backup || !status.backupId) {
      return { used: false, why: `the standby is not usable: ${status.fellOff ?? status.warnings[0] ?? status.state}` };
    }
    const paused = await pauseStandby(runbook);
    if ('why' in paused) return { used: false, why: paused.why };
    const position = `LSN ${paused.lsn}${paused.time ? `, last commit ${paused.time}` : ''}`;
    const before = await isBeforeTarget(
      runbook,
      input.target,
      paused,
      status.backupId,
      status.backup,
      input.restorePoint,
    );
    if (before !== true) {
      await resumeStandby(runbook);
      return {
        used: false,
        why: `the standby had replayed to ${position}, ${before}: PostgreSQL cannot replay backwards, so the backup path restores instead`,
      };
    }
    const source: StandbySource = {
      from: standby.dataDir,
      replayLsn: paused.lsn,
      ...(paused.time ? { lastReplayTime: paused.time } : {}),
      backupId: status.backupId,
      walSegmentSize: status.backup.walSegmentSize,
    };
    const marker = (await readMarker(standby.dataDir)) as AdoptingMarker;
    // From here the standby is this recovery's: the marker says so before anything moves.
    const adopting: AdoptingMarker = {
      ...marker,
      adoptedBy: { workflowId: input.workflowId, runId: input.runId, source },
    };
    await writeMarker(standby.dataDir, adopting, standby.pg.osUser);
    // A fast shutdown of a standby writes a restartpoint: replay resumes there.
    await stopPostmaster(standby.pg, `recovery ${input.workflowId} takes the standby over`);
    await rename(standby.dataDir, restore.dataDir);
    const moved = (await readMarker(restore.dataDir)) as AdoptingMarker;
    return {
      used: true,
      why: usedWhy(source, input.target, runbook),
      result: await markOurs(runbook, input, moved, source),
    };
  } finally {
    await standbyClaim.release().catch(() => undefined);
    await claim.release().catch(() => undefined);
  }
}

function usedWhy(s: StandbySource, target: Target, runbook: Runbook): string {
  return `the standby (delay ${formatDelay(runbook.standby!.delay)}) had replayed to LSN ${s.replayLsn}${s.lastReplayTime ? `, last commit ${s.lastReplayTime}` : ''}, before ${describeTarget(target)}: replay goes on from there instead of restoring a backup`;
}

/** Why the standby cannot serve this recovery before anything is touched, or undefined when it may. */
async function whyNot(runbook: Runbook, input: UseStandbyInput): Promise<string | undefined> {
  const restore = restoreSite(runbook, 'restore');
  const standby = restoreSite(runbook, 'standby');
  if (input.mode === 'in-place')
    return "an in-place recovery restores into the primary's own directory; the standby serves side-by-side recoveries";
  if ('xid' in input.target) return "a transaction id target cannot be placed against the standby's replay position";
  const entries = await readdir(restore.dataDir).catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? [] : undefined,
  );
  if (entries === undefined || entries.length > 0)
    return `restore.dataDir ${restore.dataDir} is not empty: the standby can only be moved into an absent or empty directory`;
  const [a, b] = await Promise.all([
    stat(path.dirname(restore.dataDir)).catch(() => undefined),
    stat(standby.dataDir).catch(() => undefined),
  ]);
  if (!b) return `there is no standby in ${standby.dataDir}`;
  if (!a) return `the parent directory of restore.dataDir ${restore.dataDir} does not exist`;
  if (a.dev !== b.dev)
    return `standby.dataDir ${standby.dataDir} and restore.dataDir ${restore.dataDir} are on different file systems: the standby is moved by a rename`;
  return copyDirectoryProblem(runbook, standby.dataDir, restore.dataDir);
}

/**
 * Pauses replay on the standby and reads where it stopped. The pause needs
 * EXECUTE on pg_wal_replay_pause() for the runbook's role, the same grant a
 * recovery to the end of the archive needs; without it the standby is left
 * as it was and the backup path is used.
 *
 * A standby holding a commit back for its delay never reaches 'paused'
 * while it waits (PostgreSQL 15 checks for a pause only once the delay has
 * passed, and then pauses before applying the record). So 'pause requested'
 * with the startup process waiting on RecoveryApplyDelay is as final as
 * 'paused': the held commit will not be applied. Seeing that wait event
 * needs pg_read_all_stats (or a superuser) for the runbook's role.
 */
async function pauseStandby(runbook: Runbook): Promise<{ lsn: string; time?: string } | { why: string }> {
  const site = restoreSite(runbook, 'standby');
  const client = standbyClient(runbook, 'lifeboat-standby-takeover');
  try {
    await client.connect();
    try {
      await client.query('select pg_wal_replay_pause()');
    } catch (err) {
      return {
        why: `the standby's replay could not be paused as role ${String(client.user)} (${errorMessage(err)}): GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO it on the primary (lifeboat grants prints it), then rebuild the standby from a new backup`,
      };
    }
    const deadline = Date.now() + PAUSE_WAIT_MS;
    for (;;) {
      const { rows } = await client.query<{ s: string; lsn: string; ts: string | null; held: boolean }>(
        `select pg_get_wal_replay_pause_state() as s, pg_last_wal_replay_lsn()::text as lsn,
                to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts,
                exists (select 1 from pg_stat_activity where backend_type = 'startup' and wait_event = 'RecoveryApplyDelay') as held`,
      );
      const r = rows[0]!;
      if (r.s === 'paused' || (r.s === 'pause requested' && r.held))
        return { lsn: r.lsn, ...(r.ts ? { time: r.ts } : {}) };
      if (Date.now() > deadline) {
        await client.query('select pg_wal_replay_resume()').catch(() => undefined);
        return {
          why: `the standby's replay did not pause within ${PAUSE_WAIT_MS / 1000} s (state ${r.s}); a standby holding a commit back for its delay counts as paused only when the role may see its startup process wait (GRANT pg_read_all_stats TO ${String(client.user)})`,
        };
      }
      await sleep(50);
    }
  } catch (err) {
    return { why: `the standby did not answer on ${site.address}:${site.port}: ${errorMessage(err)}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function resumeStandby(runbook: Runbook): Promise<void> {
  const client = standbyClient(runbook, 'lifeboat-standby-takeover');
  try {
    await client.connect();
    await client.query('select pg_wal_replay_resume()');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * true when the paused standby has not replayed past the target, else the
 * reason in words. Time: its last replayed commit is before the target (with
 * none replayed since it started, the apply delay bounds them: no commit
 * after max(backup end, now - delay) was applied). LSN: its replay position
 * is before it. A restore point: the archive holds one of that name after
 * the standby's position (pg_waldump, as preflight reads it). Latest: always.
 */
export async function isBeforeTarget(
  runbook: Runbook,
  target: Target,
  at: { lsn: string; time?: string },
  backupId: string,
  backup: RestoreMarker['backup'],
  found?: UseStandbyInput['restorePoint'],
): Promise<true | string> {
  if ('latest' in target) return true;
  if ('lsn' in target) return parseLsn(at.lsn) < parseLsn(target.lsn) ? true : `at or after ${describeTarget(target)}`;
  if ('time' in target) {
    let bound = at.time;
    if (!bound) {
      const delayBound = Date.now() - runbook.standby!.delay * 1000;
      const end = (await (await openEngine(runbook)).listBackups()).find((b) => b.backupId === backupId)?.endTime;
      const backupEnd = end ? Date.parse(end) : Date.now();
      bound = new Date(Math.max(delayBound, backupEnd)).toISOString();
    }
    return Date.parse(bound) < Date.parse(target.time)
      ? true
      : `${at.time ? 'its last replayed commit' : 'its delay and backup bound what it applied to'} ${bound}, not before ${describeTarget(target)}`;
  }
  // Where preflight found the restore point, the first of that name after its
  // backup's start: a standby paused between that start and it stops at that
  // same record, and the archive need not be searched again (issue 13:
  // seconds at 1 GiB). Paused before that start, an earlier record of the
  // name could lie between: searched below, as before.
  if ('name' in target && found && parseLsn(at.lsn) >= parseLsn(found.searchedFrom)) {
    return parseLsn(at.lsn) < parseLsn(found.lsn)
      ? true
      : `at or after restore point "${target.name}" (LSN ${found.lsn}, where preflight found it)`;
  }
  if ('name' in target) return restorePointAfter(runbook, target, at, backupId, backup);
  return `${describeTarget(target)} cannot be placed against its position`;
}

/**
 * true when the archive holds restore point `target.name` after the standby's
 * position, else why not. The archive searched from that position on with
 * pg_waldump, as preflight searches from a backup's start: Lifeboat's own
 * repository, or a pgBackRest stanza through archive-get.
 */
async function restorePointAfter(
  runbook: Runbook,
  target: { name: string },
  at: { lsn: string },
  backupId: string,
  backup: RestoreMarker['backup'],
): Promise<true | string> {
  const cluster = clusterName(runbook);
  const segSize = backup.walSegmentSize;
  const from = {
    startLsn: at.lsn,
    startWal: segmentName(backup.timeline, segnoOfLsn(at.lsn, segSize), segSize),
    walSegmentSize: segSize,
  };
  const search = (
    source: SegmentSource,
    meta: Parameters<typeof checkTargetReach>[0]['backup'],
    files: string[],
    histories: Record<string, string>,
  ) =>
    checkTargetReach({
      source,
      cluster,
      pgBin: runbook.cluster.pgBin,
      runbookName: runbook.name,
      backup: meta,
      target,
      files,
      histories,
      cache: new Map(),
    });
  let reach: Awaited<ReturnType<typeof search>>;
  if (engineSetting(runbook).kind === 'lifeboat') {
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const meta = (await readCatalog(repo, cluster)).filter(isComplete).find((e) => e.backupId === backupId)?.meta;
    if (!meta) return `${describeTarget(target)} cannot be placed against its position`;
    const { files, histories } = await readWalArchive(repo, cluster);
    reach = await search(
      { repo, cluster },
      { ...meta, ...from },
      files.map((f) => f.name),
      histories,
    );
  } else {
    const engine = await openEngine(runbook);
    const meta = (await engine.listBackups()).find((b) => b.backupId === backupId);
    if (!meta || !(engine instanceof PgBackRestEngine))
      return `${describeTarget(target)} cannot be placed against its position`;
    const { files, histories } = await engine.walFiles();
    reach = await withStanzaSegments(runbook, (source) => search(source, { ...meta, ...from }, files, histories));
  }
  if (
    !reach.refusal &&
    reach.warnings.length === 0 &&
    reach.reaches?.startsWith(`restore point "${target.name}" at LSN`)
  )
    return true;
  return (
    reach.warnings[0] ??
    `the archive holds no restore point "${target.name}" after its position ${formatLsn(parseLsn(at.lsn))}`
  );
}

/**
 * The copy in restore.dataDir becomes this recovery's: pointed at its own
 * directory (./copy.ts: pgBackRest's restore_command, and its archive
 * settings, since it is the next primary), then marked, ready for replay-wal.
 * Run twice: the same settings, the same marker.
 */
async function markOurs(
  runbook: Runbook,
  input: UseStandbyInput,
  from: AdoptingMarker,
  source: StandbySource,
): Promise<RestoreResult> {
  const restore = restoreSite(runbook, 'restore');
  await pointCopyAtItself(runbook, restore.dataDir, source.from, { archive: true });
  return markStandbyCopy({
    site: restore,
    run: { workflowId: input.workflowId, runId: input.runId, mode: input.mode },
    backupId: from.backupId,
    backup: from.backup,
    bytes: from.result?.bytes ?? 0,
    files: from.result?.files ?? 0,
    source,
  });
}
