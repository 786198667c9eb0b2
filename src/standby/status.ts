// How the warm standby is doing, read on its host: is it there and ours,
// running, still in recovery, where its replay is (LSN, last replayed commit)
// against the newest segment of the archive on its line of timelines, and
// whether it fell off the archive (it can never catch up again: rebuild) or
// only fell behind (a warning). Read only: the marker, pg_ctl status, one
// connection to the standby, the archive's WAL listing (Lifeboat's
// repository, or the engine's: pgBackRest's repo-ls).
import { readdir } from 'node:fs/promises';
import * as os from 'node:os';
import { Client } from 'pg';
import { readWalArchive } from '../catalog/catalog';
import { errorMessage } from '../errors';
import { openRepository } from '../repository';
import { walReader } from '../restore/engine-replay';
import { readMarker, type RestoreMarker } from '../restore/marker';
import { postmasterRunning } from '../restore/postmaster';
import { archiveEndOnLine } from '../restore/replay';
import { restoreSite, siteClientConfig } from '../restore/site';
import { engineSetting } from '../runbook/engine';
import { clusterName, type Runbook } from '../runbook/schema';
import { readRestoreFailure } from '../wal/get-failure';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segnoOfLsn } from '../wal/names';
import { formatDelay, standbyOwner } from './conf';

export type StandbyState =
  /** Nothing at standby.dataDir: never built, or taken over by a recovery. */
  | 'absent'
  /** Something at standby.dataDir that Lifeboat's standby marker does not name: never touched. */
  | 'foreign'
  /** Built, but the extraction never finished or its postmaster never started. */
  | 'incomplete'
  /** Built, no postmaster running. */
  | 'stopped'
  /** Running, in recovery: the normal state. */
  | 'replaying'
  /** Running but out of recovery: someone promoted it; it follows the archive no more. */
  | 'promoted';

export interface StandbyStatus {
  dataDir: string;
  port: number;
  delaySeconds: number;
  state: StandbyState;
  /** Running, replaying, and not fallen off the archive. */
  healthy: boolean;
  backupId?: string;
  /** The marker's backup facts (for the restore source, and the archive line). */
  backup?: RestoreMarker['backup'];
  builtAt?: string;
  replayLsn?: string;
  /** Time of the last replayed commit (pg_last_xact_replay_timestamp), UTC. */
  lastReplayTime?: string;
  /** Now minus the last replayed commit, in seconds: about `delay` on a busy primary, more on an idle one. */
  replayLagSeconds?: number;
  /** The startup process waits for a commit's delay to pass (wait event RecoveryApplyDelay). */
  waitingForDelay?: boolean;
  /** pg_get_wal_replay_pause_state(): 'not paused', 'pause requested', 'paused'. */
  pauseState?: string;
  /** The newest archived segment on the standby's line of timelines. */
  archiveNewest?: string;
  segmentsBehind?: number;
  bytesBehind?: number;
  /** Why the standby can never catch up (rebuild it with lifeboat standby build). */
  fellOff?: string;
  warnings: string[];
  /** Its server log, when known. */
  logFile?: string;
  /** state absent: a recovery took the standby over (restore.dataDir's marker says so); nothing rebuilds it. */
  takenOver?: { workflowId: string; at: string; into: string };
}

interface Observed {
  inRecovery: boolean;
  lsn: string | null;
  ts: string | null;
  pause: string | null;
  delayWait: boolean;
}

/**
 * Whether this process runs on the standby's host, where its data directory
 * and loopback port are. Runbook hosts are names of Lifeboat's own (those of
 * `lifeboat worker --host`), not necessarily the OS host name: an explicit
 * `--host` decides; without it, the OS host name (whole, or its first label)
 * equal to standby.host. Anywhere else the standby is not read at all: its
 * directory is absent there, which says nothing about the standby.
 */
export function onStandbyHost(standbyHost: string, hostOption?: string): { here: boolean; thisHost: string } {
  if (hostOption !== undefined) return { here: hostOption === standbyHost, thisHost: hostOption };
  const name = os.hostname();
  const lower = standbyHost.toLowerCase();
  return { here: name.toLowerCase() === lower || name.split('.')[0]!.toLowerCase() === lower, thisHost: name };
}

/**
 * A client of the standby over its loopback port as the runbook's role, not
 * yet connected; short timeouts, and an error after connecting is ignored
 * (every caller ends it).
 */
export function standbyClient(runbook: Runbook, applicationName: string): Client {
  const client = new Client(
    siteClientConfig(runbook, restoreSite(runbook, 'standby'), {
      connectionTimeoutMillis: 5000,
      query_timeout: 15_000,
      application_name: applicationName,
    }),
  );
  client.on('error', () => undefined);
  return client;
}

/** One look at the standby over its loopback port. */
export async function observeStandby(runbook: Runbook): Promise<Observed> {
  const client = standbyClient(runbook, 'lifeboat-standby-status');
  await client.connect();
  try {
    const { rows } = await client.query<{
      r: boolean;
      lsn: string | null;
      ts: string | null;
      pause: string | null;
      delay: boolean;
    }>(
      `select pg_is_in_recovery() as r,
              pg_last_wal_replay_lsn()::text as lsn,
              to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts,
              case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end as pause,
              exists (select 1 from pg_stat_activity where backend_type = 'startup' and wait_event = 'RecoveryApplyDelay') as delay`,
    );
    const r = rows[0]!;
    return { inRecovery: r.r, lsn: r.lsn, ts: r.ts, pause: r.pause, delayWait: r.delay };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function readStandbyStatus(runbook: Runbook, now = new Date()): Promise<StandbyStatus> {
  const site = restoreSite(runbook, 'standby');
  const delaySeconds = runbook.standby!.delay;
  const base = { dataDir: site.dataDir, port: site.port, delaySeconds, warnings: [] as string[] };
  const marker = await readMarker(site.dataDir);
  const running = await postmasterRunning(site.pg).catch(() => false);
  if (!marker) {
    const entries = await readdir(site.dataDir).catch(() => undefined);
    if (!entries || entries.length === 0) {
      const taken = await takenOverBy(runbook, site.dataDir);
      if (taken) {
        return {
          ...base,
          state: 'absent',
          healthy: false,
          takenOver: taken,
          fellOff: `standby taken over by recovery ${taken.workflowId} at ${taken.at}; rebuild it with lifeboat standby build --runbook ${runbook.name}`,
        };
      }
      return { ...base, state: 'absent', healthy: false, fellOff: `there is no standby in ${site.dataDir}` };
    }
    return {
      ...base,
      state: 'foreign',
      healthy: false,
      fellOff: `${site.dataDir} holds ${running ? 'a running server' : 'files'} that Lifeboat did not build as the standby; it is never touched`,
    };
  }
  if (marker.workflowId !== standbyOwner(runbook)) {
    return {
      ...base,
      state: 'foreign',
      healthy: false,
      fellOff: `${site.dataDir} holds a copy of workflow ${marker.workflowId}, not the standby; it is never touched`,
    };
  }
  const known = {
    ...base,
    backupId: marker.backupId,
    backup: marker.backup,
    builtAt: marker.result?.finishedAt ?? marker.at,
    ...(marker.logFile ? { logFile: marker.logFile } : {}),
  };
  if (marker.state === 'extracting' || marker.state === 'extracted') {
    return {
      ...known,
      state: 'incomplete',
      healthy: false,
      fellOff: `the build of the standby from backup ${marker.backupId} never finished (state ${marker.state})`,
    };
  }
  if (marker.state === 'promoted')
    return { ...known, state: 'promoted', healthy: false, fellOff: 'the standby was promoted; it replays no more' };
  const failure = await readRestoreFailure(site.dataDir);
  if (!running) {
    // Stopped by archive-get's failure: it cannot go on. Stopped otherwise
    // (a reboot, by hand): a restart resumes from its last restartpoint.
    if (failure)
      return {
        ...known,
        state: 'stopped',
        healthy: false,
        fellOff: `its PostgreSQL stopped: archive-get could not restore ${failure.walFile}: ${failure.what.split('\n')[0]}`,
      };
    return {
      ...known,
      state: 'stopped',
      healthy: false,
      warnings: [`its PostgreSQL is not running: lifeboat standby build --runbook ${runbook.name} starts it again`],
    };
  }
  let o: Observed;
  try {
    o = await observeStandby(runbook);
  } catch (err) {
    return {
      ...known,
      state: 'replaying',
      healthy: false,
      warnings: [
        `the standby does not answer on 127.0.0.1:${site.port} yet (${errorMessage(err)}): still starting, or reaching consistency`,
      ],
    };
  }
  if (!o.inRecovery)
    return {
      ...known,
      state: 'promoted',
      healthy: false,
      fellOff: 'the standby is out of recovery (promoted by someone); it follows the archive no more',
    };
  const status: StandbyStatus = {
    ...known,
    state: 'replaying',
    healthy: true,
    ...(o.lsn ? { replayLsn: o.lsn } : {}),
    ...(o.ts
      ? { lastReplayTime: o.ts, replayLagSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(o.ts)) / 1000)) }
      : {}),
    waitingForDelay: o.delayWait,
    ...(o.pause ? { pauseState: o.pause } : {}),
  };
  if (failure)
    status.warnings.push(`archive-get failed on ${failure.walFile} at ${failure.at}: ${failure.what.split('\n')[0]}`);
  if (o.pause && o.pause !== 'not paused')
    status.warnings.push(
      `replay on the standby is ${o.pause} (pg_wal_replay_pause): it follows the archive only once resumed (select pg_wal_replay_resume())`,
    );
  await judgeAgainstArchive(runbook, status);
  return status;
}

/**
 * The recovery that took the standby over, when the copy in restore.dataDir
 * says it came from standby.dataDir (its marker's result.standby, written by
 * useStandby and kept through replay and promotion). A later recovery that
 * restored over it leaves no trace: the standby is then simply absent.
 */
async function takenOverBy(runbook: Runbook, standbyDir: string): Promise<StandbyStatus['takenOver']> {
  const restore = restoreSite(runbook, 'restore');
  const m = await readMarker(restore.dataDir).catch(() => undefined);
  const from = m?.result?.standby;
  if (!m || !from || from.from !== standbyDir) return undefined;
  return { workflowId: m.workflowId, at: m.result!.finishedAt, into: restore.dataDir };
}

/** Segments behind the archive's newest, and whether the one it needs next is gone for good. */
async function judgeAgainstArchive(runbook: Runbook, status: StandbyStatus): Promise<void> {
  if (!status.replayLsn || !status.backup) return;
  const { files: names, histories } = await readArchiveNames(runbook);
  const end = archiveEndOnLine(names, histories, status.backup);
  if (!end) return;
  const segSize = status.backup.walSegmentSize;
  const at = parseLsn(status.replayLsn);
  const replaySeg = segnoOfLsn(at, segSize);
  status.archiveNewest = end.name;
  status.segmentsBehind = Math.max(0, Number(end.startLsn / BigInt(segSize) - replaySeg));
  status.bytesBehind = Number(end.endLsn > at ? end.endLsn - at : 0n);
  // The segment after the one being replayed, on any timeline: missing while
  // later ones are there, restore_command will never find it.
  const segnos = new Set(names.filter((n) => /^[0-9A-F]{24}$/.test(n)).map((n) => parseSegmentName(n, segSize).segno));
  const endSeg = end.startLsn / BigInt(segSize);
  for (let s = replaySeg + 1n; s <= endSeg; s++) {
    if (!segnos.has(s)) {
      status.healthy = false;
      status.fellOff = `the archive has no segment ${segmentName(end.timeline, s, segSize)} after the standby's replay position ${formatLsn(at)}, but has later ones up to ${end.name}: it can never catch up`;
      return;
    }
  }
  const max = runbook.standby?.maxLagSegments;
  if (max !== undefined && status.segmentsBehind > max) {
    status.healthy = false;
    status.fellOff = `the standby is ${status.segmentsBehind} segments behind the archive's newest ${end.name}, more than standby.maxLagSegments ${max}`;
    return;
  }
  // Behind by more than its delay with WAL waiting: replay is stuck or too slow.
  const slack = Math.max(300, status.delaySeconds);
  if (
    status.segmentsBehind >= 2 &&
    status.replayLagSeconds !== undefined &&
    status.replayLagSeconds > status.delaySeconds + slack &&
    !status.waitingForDelay
  ) {
    status.warnings.push(
      `the standby's last replayed commit is ${status.replayLagSeconds} s old (delay ${formatDelay(status.delaySeconds)}) with ${status.segmentsBehind} archived segments still to replay: it is not keeping up`,
    );
  }
}

/**
 * The archive's WAL file names and history files: Lifeboat's repository (as
 * the runbook names it), or the engine's own listing (pgBackRest: repo-ls
 * and repo-get, src/restore/engine-replay.ts).
 */
export async function readArchiveNames(
  runbook: Runbook,
): Promise<{ files: string[]; histories: Record<string, string> }> {
  if (engineSetting(runbook).kind !== 'lifeboat') return (await walReader(runbook, clusterName(runbook)))();
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const { files, histories } = await readWalArchive(repo, clusterName(runbook));
  return { files: files.map((f) => f.name), histories };
}

/** One line for `lifeboat check` and `lifeboat standby status`. */
export function standbyLine(s: StandbyStatus): string {
  const head = `standby ${s.dataDir} (port ${s.port}, delay ${formatDelay(s.delaySeconds)})`;
  if (s.state !== 'replaying')
    return `${head}: ${s.state}${s.fellOff ? `: ${s.fellOff}` : s.warnings[0] ? `: ${s.warnings[0]}` : ''}`;
  const parts = [
    s.replayLsn ? `replayed to ${s.replayLsn}` : 'not consistent yet',
    s.lastReplayTime ? `last commit ${s.lastReplayTime} (${s.replayLagSeconds} s ago)` : 'no commit replayed yet',
    s.archiveNewest !== undefined
      ? `${s.segmentsBehind} segment(s) behind the archive's newest ${s.archiveNewest}`
      : undefined,
    s.waitingForDelay ? 'holding a commit back for its delay' : undefined,
    s.backupId ? `built from backup ${s.backupId}` : undefined,
  ].filter(Boolean);
  return `${head}: ${s.healthy ? 'replaying' : 'FELL OFF'}, ${parts.join(', ')}${s.fellOff ? `: ${s.fellOff}` : ''}`;
}
