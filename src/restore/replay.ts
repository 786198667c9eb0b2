// replay-wal: write the recovery settings, start PostgreSQL on the restored
// copy, and wait until replay pauses at the target. Never promotes.
//
// The postmaster outlives the worker (pg_ctl detaches it), so a worker that
// dies mid-replay loses nothing: the retried activity finds the postmaster
// running with the same target and only waits again.
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { quoteIdent, sqlState } from '../gates/sql';
import type { ClientConfig } from 'pg';
import {
  describeTarget,
  type ReplayInput,
  type ReplayProgress,
  type ReplayResult,
  type Target,
} from '../recovery/contract';
import { archiveLine } from '../recovery/reach';
import { encryptionArgs, restoreEncryption } from '../repository/keys';
import { fallbackRepoArgs } from '../repository/multi';
import { readWalSources } from '../wal/get-fallback';
import { clusterName, type Runbook } from '../runbook/schema';
import { lifeboatCommand } from '../tools';
import { clearRestoreFailure, readRestoreFailure } from '../wal/get-failure';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segnoOfLsn } from '../wal/names';
import { requireOurMarker, updateMarker, type RestoreMarker } from './marker';
import { archiveGetFailureInLog, restoreCommandFailed, undecodableSegment } from './replay-failure';
import { postmasterEnvWithCredentials } from './secret-file';
import { startPrefetcher, stopPrefetcher } from './prefetch';
import { LogWatch } from './log-watch';
import {
  fileSize,
  lastLines,
  postmasterRunning,
  readLogFrom,
  requirePgData,
  runFiles,
  startPostmaster,
  stopPostmaster,
  type PgHost,
} from './postmaster';
import { shellWord, signalKind, writeRecoveryConf, writeSignalFile } from './recovery-conf';
import { engineSetting } from '../runbook/engine';
import { restoreSite, siteClientConfig, siteLabel } from './site';
import { engineRestoreCommand, walReader, type WalReader } from './engine-replay';

export interface ReplayHooks {
  onProgress: (p: ReplayProgress) => void;
  signal?: AbortSignal;
  /**
   * How often the instance is polled when its log says nothing; heartbeats go
   * out at most every 2 s. The server log is looked at every 50 ms in
   * between, and its pause line ends the wait at once (log-watch.ts).
   */
  pollMs?: number;
}

/** Polls in a row without replay moving before "latest" may decide the archive has ended. */
const STABLE_POLLS = 3;
/** After pg_ctl start, how long a missing postmaster may still be starting rather than dead. */
const START_GRACE_MS = 10_000;
/** Once the log says replay paused, how often to ask until the server says so too (microseconds apart in PostgreSQL). */
const PAUSE_FOLLOW_MS = 50;

export async function replayWal(runbook: Runbook, input: ReplayInput, hooks: ReplayHooks): Promise<ReplayResult> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  let marker = await requireOurMarker(pg.dataDir, input.workflowId, 'replay-wal');
  if (marker.state === 'promoted') {
    throw new LifeboatError(
      'PG_RUNNING',
      `replay-wal: ${siteLabel(site)} in ${pg.dataDir} was already promoted at ${marker.promotedAt ?? marker.at}; it can replay no further`,
      {
        hints: ['a different target needs a fresh restore (retarget restores again)'],
      },
    );
  }
  if (marker.state === 'extracting') {
    throw new LifeboatError(
      'BACKUP_NOT_FOUND',
      `replay-wal: the extraction of backup ${marker.backupId} into ${pg.dataDir} never finished`,
      {
        hints: ['retry restore-base-backup: it moves this copy aside and restores again'],
      },
    );
  }
  requirePgData(pg.dataDir, 'to replay');
  // Fail on a missing password variable before starting anything.
  const clientConfig = siteClientConfig(runbook, site, {
    connectionTimeoutMillis: 5000,
    query_timeout: 15_000,
    application_name: 'lifeboat-replay',
  });
  const cluster = clusterName(runbook);
  const engine = engineSetting(runbook);
  const files =
    marker.logFile && marker.socketDir ? { logFile: marker.logFile, socketDir: marker.socketDir } : await runFiles(pg);
  const running = await postmasterRunning(pg);

  let started: { at: number; logFrom: number } | undefined;
  if (!(running && marker.target && sameTarget(marker.target, input.target))) {
    if (running && !input.continueFrom) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `replay-wal: ${siteLabel(site)} in ${pg.dataDir} is replaying towards ${marker.target ? describeTarget(marker.target) : 'another target'}, not ${describeTarget(input.target)}`,
        { hints: ['a later target continues with continueFrom: true; an earlier one needs a fresh restore'] },
      );
    }
    await writeRecoveryConf(
      pg.dataDir,
      {
        port: site.port,
        listenAddress: site.address,
        socketDir: files.socketDir,
        restoreCommand:
          engine.kind === 'lifeboat'
            ? `${lifeboatCommand()} archive-get %f %p --repo ${shellWord(runbook.repository.url)} --cluster ${shellWord(cluster)}${[...encryptionArgs(restoreEncryption(runbook.repositories)), ...fallbackRepoArgs(runbook)].map((a) => ` ${shellWord(a)}`).join('')}`
            : await engineRestoreCommand(pg.dataDir),
        target: input.target,
        workflowId: input.workflowId,
        ...(site.instance === 'drill' ? { archiveOff: true } : {}),
      },
      pg.osUser,
    );
    await writeSignalFile(pg.dataDir, signalKind(input.target), pg.osUser);
    marker = await updateMarker(pg.dataDir, marker, { state: 'replaying', target: input.target, ...files }, pg.osUser);
    // continueFrom: a restart keeps the data; replay goes on from the last restartpoint.
    if (running) await stopPostmaster(pg, 'restarting replay towards a new target');
    const logFrom = await fileSize(files.logFile);
    // A failure archive-get recorded before this start is not this start's (src/wal/get-failure.ts).
    await clearRestoreFailure(pg.dataDir);
    // The spool filled before PostgreSQL asks: its first segments and history probes skip Node (prefetch.ts).
    // No secret in the postmaster's environment: the restore identity's keys go in its credentials file.
    const env = await postmasterEnvWithCredentials(runbook, pg, 'restore');
    // Another engine's archive-get fetches on its own (pgBackRest: archive-async and its spool, when its configuration turns them on).
    if (engine.kind === 'lifeboat') await startPrefetcher(runbook, pg, marker.backup);
    await startPostmaster(pg, files.logFile, env);
    started = { at: Date.now(), logFrom };
  }
  const paused = await waitForPause({
    runbook,
    pg,
    input,
    marker,
    logFile: files.logFile,
    started,
    readWal: await walReader(runbook, cluster),
    cluster,
    clientConfig,
    hooks,
  });
  // Files archive-get took from another repository of the runbook's (src/wal/get-fallback.ts).
  const fromOthers = runbook.repositories.length > 1 ? await readWalSources(pg.dataDir) : [];
  return fromOthers.length > 0 ? { ...paused, walFromOtherRepositories: fromOthers } : paused;
}

function sameTarget(a: Target, b: Target): boolean {
  return describeTarget(a) === describeTarget(b);
}

interface Observed {
  inRecovery: boolean;
  pause: string | null;
  lsn: string | null;
  time: string | null;
  timeline: number;
}

async function observe(client: Client): Promise<Observed> {
  const { rows } = await client.query<{
    r: boolean;
    pause: string | null;
    lsn: string | null;
    ts: string | null;
    tli: number;
  }>(
    `select pg_is_in_recovery() as r,
            case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end as pause,
            pg_last_wal_replay_lsn()::text as lsn,
            to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts,
            (select timeline_id from pg_control_checkpoint()) as tli`,
  );
  const r = rows[0]!;
  return { inRecovery: r.r, pause: r.pause, lsn: r.lsn, time: r.ts, timeline: Number(r.tli) };
}

interface WaitArgs {
  runbook: Runbook;
  pg: PgHost;
  input: ReplayInput;
  marker: RestoreMarker;
  logFile: string;
  /** Set when this call started the postmaster: where its log lines begin. */
  started?: { at: number; logFrom: number };
  /** The archive's WAL file names and history files: Lifeboat's repository, or the engine's listing. */
  readWal: WalReader;
  cluster: string;
  clientConfig: ClientConfig;
  hooks: ReplayHooks;
}

async function waitForPause(a: WaitArgs): Promise<ReplayResult> {
  const { hooks, input, marker } = a;
  const pollMs = hooks.pollMs ?? 1000;
  const latest = 'latest' in input.target;
  const archiveEnd = new ArchiveEnd(a.readWal, marker.backup);
  const base: ReplayProgress = {
    phase: 'starting',
    startLsn: marker.backup.startLsn,
    ...('lsn' in input.target ? { targetLsn: input.target.lsn } : {}),
    ...('time' in input.target ? { targetTime: input.target.time } : {}),
  };
  let lastBeat = 0;
  let lastPhase = '';
  const beat = (p: ReplayProgress) => {
    if (p.phase === lastPhase && Date.now() - lastBeat < 2000) return;
    lastBeat = Date.now();
    lastPhase = p.phase;
    hooks.onProgress(p);
  };
  let client: Client | undefined;
  let seenRunning = false;
  let lastLsn: string | null = null;
  let stable = 0;
  let pauseAsked = false;
  // The wait between polls ends early when the server log says replay paused
  // (or the server became ready, or gave up): the step used to end up to a
  // whole poll (1 s) after PostgreSQL paused (issue 13). A log elsewhere
  // (logging_collector on in the backup's postgresql.conf) or in another
  // language only leaves the once-a-poll check.
  const watch = new LogWatch(a.logFile, a.started?.logFrom ?? (await fileSize(a.logFile)));
  let pauseLogged = false;
  const nap = async () => {
    const events = await watch.sleep(pauseLogged ? Math.min(pollMs, PAUSE_FOLLOW_MS) : pollMs, hooks.signal);
    if (events.includes('pause')) pauseLogged = true;
  };
  try {
    for (;;) {
      hooks.signal?.throwIfAborted();
      let o: Observed | undefined;
      try {
        if (!client) {
          client = new Client(a.clientConfig);
          // A server that dies under an open connection emits 'error' on the client.
          client.on('error', () => undefined);
          await client.connect();
        }
        o = await observe(client);
        seenRunning = true;
      } catch {
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      if (!o) {
        if (await postmasterRunning(a.pg)) seenRunning = true;
        // No grace needed when archive-get recorded why it aborted recovery,
        // or when this start's log already says the server gave up.
        else if (
          seenRunning ||
          !a.started ||
          Date.now() - a.started.at > START_GRACE_MS ||
          (await readRestoreFailure(a.pg.dataDir)) ||
          (await startGaveUp(a))
        ) {
          // Nothing asks for WAL any more: the prefetcher would go on filling
          // the spool for 30 s, in a directory the operator may be moving aside.
          await stopPrefetcher(a.pg.dataDir);
          throw await whyItStopped(a, lastLsn);
        }
        beat({ ...base, phase: 'starting' });
        await nap();
        continue;
      }
      if (!o.inRecovery) {
        throw new LifeboatError(
          'PG_RUNNING',
          `the restored copy in ${a.pg.dataDir} is no longer in recovery: something promoted it while Lifeboat waited for replay to pause`,
          {
            hints: [
              'Lifeboat never promotes during replay-wal; look for pg_promote() or pg_ctl promote in its server log: ' +
                a.logFile,
              'its data may be past the target; restore again (retarget) before trusting it',
            ],
          },
        );
      }
      const progress: ReplayProgress = {
        ...base,
        phase: 'replaying',
        ...(o.lsn ? { lsn: o.lsn } : {}),
        ...(o.time ? { time: o.time } : {}),
      };
      if (o.pause === 'paused') {
        hooks.onProgress({ ...progress, phase: 'paused' });
        return result(marker, o);
      }
      stable = o.lsn !== null && o.lsn === lastLsn ? stable + 1 : 0;
      lastLsn = o.lsn;
      if (latest && !pauseAsked && o.lsn && stable >= STABLE_POLLS) {
        const end = await archiveEnd.newest();
        if (end) progress.targetLsn = formatLsn(end.endLsn);
        // Every archived segment is replayed once replay is past the start of the newest one.
        if (end && parseLsn(o.lsn) > end.startLsn) {
          await pauseReplay(client!, a);
          pauseAsked = true;
        }
      }
      beat(progress);
      await nap();
    }
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/**
 * pg_wal_replay_pause() on the copy, which a latest replay needs to stop at
 * the archive's end. Only superusers and roles granted EXECUTE may call it,
 * and the copy is read-only with the backup's catalog: a refusal is a grant
 * missing on the primary when the backup was taken, which no retry can fix.
 */
async function pauseReplay(client: Client, a: WaitArgs): Promise<void> {
  try {
    await client.query('select pg_wal_replay_pause()');
  } catch (err) {
    // 42501 insufficient_privilege ("permission denied for function pg_wal_replay_pause").
    if (sqlState(err) !== '42501') throw err;
    const role = String(a.clientConfig.user);
    const database = String(a.clientConfig.database);
    throw new LifeboatError(
      'PRIVILEGE_MISSING',
      `replay-wal: role ${role} may not call pg_wal_replay_pause() in database ${database} of the copy in ${a.pg.dataDir} (${errorMessage(err)}); replay to the end of the archive (latest) cannot stop there`,
      {
        hints: [
          `the copy's catalog is the backup's, so the grant goes on the primary, in database ${database}: GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO ${quoteIdent(role)};`,
          `then take a new base backup (lifeboat backup --runbook ${a.runbook.name}); lifeboat grants --runbook ${a.runbook.name} prints every grant the role needs`,
          'or recover to a named target instead (--to-time, --to-name, --to-lsn): those pause without this function',
          `nothing was promoted; PostgreSQL in ${a.pg.dataDir} is still replaying (server log: ${a.logFile})`,
        ],
      },
    );
  }
}

function result(marker: RestoreMarker, o: Observed): ReplayResult {
  const seg = marker.backup.walSegmentSize;
  const start = parseLsn(marker.backup.startLsn);
  const at = o.lsn ? parseLsn(o.lsn) : start;
  // A pause right after a segment switch sits on the next segment's first byte: that segment was not replayed.
  const last = at > start ? at - 1n : start;
  return {
    paused: true,
    lsn: formatLsn(at),
    ...(o.time ? { time: o.time } : {}),
    timeline: o.timeline,
    walSegmentsReplayed: Number(segnoOfLsn(last, seg) - segnoOfLsn(start, seg)) + 1,
    walBytesReplayed: Number(at > start ? at - start : 0n),
  };
}

/** The last segment replay can read: its name, timeline and LSN range. */
export interface ArchiveEndSegment {
  name: string;
  timeline: number;
  startLsn: bigint;
  endLsn: bigint;
}

/**
 * The end of the archive for a replay from this backup: the newest archived
 * segment on the line of timelines it follows (recovery_target_timeline =
 * 'latest', recovery-conf.ts), not the newest segment of any timeline. After
 * a side-by-side recovery the old primary may go on archiving its timeline
 * past the branch point; those segments are not on the line, and waiting for
 * replay to reach them waits forever (issue 11: 623 s for 0/D000000).
 */
export function archiveEndOnLine(
  files: readonly string[],
  histories: Readonly<Record<string, string>>,
  backup: RestoreMarker['backup'],
): ArchiveEndSegment | undefined {
  const segSize = backup.walSegmentSize;
  const startWal = segmentName(backup.timeline, segnoOfLsn(backup.startLsn, segSize), segSize);
  const line = archiveLine(files, histories, {
    timeline: backup.timeline,
    startLsn: backup.startLsn,
    startWal,
    walSegmentSize: segSize,
  });
  const name = line.segments[line.segments.length - 1];
  if (!name) return undefined;
  const { timeline, segno } = parseSegmentName(name, segSize);
  const size = BigInt(segSize);
  // Capped at the switch point when the line ends in a parent's copy of the newest timeline's first segment.
  const endLsn = line.endCap?.segment === name ? parseLsn(line.endCap.lsn) : (segno + 1n) * size;
  return { name, timeline, startLsn: segno * size, endLsn };
}

/** The end of the archive on the backup's line (archiveEndOnLine), re-read at most every few seconds. */
class ArchiveEnd {
  private cached?: { at: number; value?: ArchiveEndSegment };
  constructor(
    private readonly readWal: WalReader,
    private readonly backup: RestoreMarker['backup'],
  ) {}

  async newest(maxAgeMs = 5000): Promise<ArchiveEndSegment | undefined> {
    if (this.cached && Date.now() - this.cached.at < maxAgeMs) return this.cached.value;
    const { files, histories } = await this.readWal();
    const value = archiveEndOnLine(files, histories, this.backup);
    this.cached = { at: Date.now(), value };
    return value;
  }
}

/** The postmaster's last words when its startup process (recovery) failed. */
const STARTUP_FAILED = /aborting startup due to startup process failure|database system is shut down/;

async function startGaveUp(a: WaitArgs): Promise<boolean> {
  return a.started !== undefined && STARTUP_FAILED.test(await readLogFrom(a.logFile, a.started.logFrom));
}

const ENDED_BEFORE_TARGET = 'recovery ended before configured recovery target was reached';
const BEFORE_CONSISTENT = 'requested recovery stop point is before consistent recovery point';

/**
 * The error for a postmaster that exited during replay: first what
 * archive-get recorded when it aborted recovery (a corrupt or unreadable
 * segment), then what the server's own log says.
 */
async function whyItStopped(a: WaitArgs, lastLsn: string | null): Promise<LifeboatError> {
  const log = await readLogFrom(a.logFile, a.started?.logFrom ?? 0);
  const target = describeTarget(a.input.target);
  const failed = (await readRestoreFailure(a.pg.dataDir)) ?? archiveGetFailureInLog(log);
  if (failed) return restoreCommandFailed(a, failed, lastLsn);
  if (log.includes(ENDED_BEFORE_TARGET)) {
    const undecodable = await undecodableSegment(a, log);
    if (undecodable) return undecodable;
    const redoDone = [...log.matchAll(/redo done at ([0-9A-F]+\/[0-9A-F]+)/g)].pop()?.[1] ?? lastLsn ?? undefined;
    const lastCommit = [...log.matchAll(/last completed transaction was at log time (.+)/g)].pop()?.[1]?.trim();
    const end = await new ArchiveEnd(a.readWal, a.marker.backup).newest(0).catch(() => undefined);
    const reached = [redoDone ? `LSN ${redoDone}` : undefined, lastCommit ? `last commit at ${lastCommit}` : undefined]
      .filter(Boolean)
      .join(', ');
    return new LifeboatError(
      'RECOVERY_ENDED_BEFORE_TARGET',
      `recovery of ${a.cluster} in ${a.pg.dataDir} ended before reaching ${target}: the archive ends at segment ${end?.name ?? '(none)'}${reached ? ` (replay reached ${reached})` : ''}`,
      {
        hints: [
          `choose an earlier target${reached ? `: the furthest this archive reaches is ${reached}` : ''}`,
          `if WAL after ${end?.name ?? 'that segment'} should exist, check the archiver on the primary: select last_archived_wal, last_failed_wal, failed_count from pg_stat_archiver; and run lifeboat check --runbook ${a.runbook.name}`,
          `nothing was promoted: PostgreSQL in ${a.pg.dataDir} has stopped, still in archive recovery (server log: ${a.logFile})`,
        ],
        details: { archiveEnd: end?.name, replayedTo: redoDone, lastCommit },
      },
    );
  }
  if (log.includes(BEFORE_CONSISTENT)) {
    return new LifeboatError(
      'INPUT_INVALID',
      `${target} lies before the end of base backup ${a.marker.backupId} (its WAL up to there must be replayed first); PostgreSQL in ${a.pg.dataDir} stopped`,
      {
        hints: [
          'choose a later target, or recover from an older backup that finished before it',
          'nothing was promoted',
        ],
      },
    );
  }
  const lines = lastLines(log, 10);
  return new LifeboatError(
    'TOOL_FAILED',
    `PostgreSQL in ${a.pg.dataDir} stopped while replaying towards ${target}; the last lines of its log (${a.logFile}):\n  ${lines.length > 0 ? lines.join('\n  ') : '(empty)'}`,
    {
      hints: [
        'nothing was promoted; a retry of replay-wal starts it again and replay resumes from its last restartpoint',
        'lines from lifeboat archive-get name a WAL file the repository could not serve: check the repository, then retry',
      ],
    },
  );
}
