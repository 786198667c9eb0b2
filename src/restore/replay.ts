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
import { encryptionArgs, restoreEncryption } from '../repository/keys';
import { fallbackRepoArgs } from '../repository/multi';
import { readWalSources } from '../wal/get-fallback';
import { clusterName, type Runbook } from '../runbook/schema';
import { lifeboatCommand } from '../tools';
import { clearRestoreFailure, readRestoreFailure } from '../wal/get-failure';
import { formatLsn, parseLsn, segnoOfLsn } from '../wal/names';
import { requireOurMarker, updateMarker, type RestoreMarker } from './marker';
import { ArchiveEnd } from './archive-end';
import { startGaveUp, whyItStopped, type StoppedReplay } from './replay-failure';
import { postmasterEnvWithCredentials } from './secret-file';
import { startPrefetcher, stopPrefetcher } from './prefetch';
import { LogWatch } from './log-watch';
import { fileSize, postmasterRunning, requirePgData, runFiles, startPostmaster, stopPostmaster } from './postmaster';
import { shellWord, signalKind, writeRecoveryConf, writeSignalFile } from './recovery-conf';
import { engineSetting } from '../runbook/engine';
import { restoreSite, siteClientConfig, siteLabel } from './site';
import { engineRestoreCommand, walReader } from './engine-replay';

// The end of the archive moved to archive-end.ts; src/standby/status.ts still imports it from here.
export { archiveEndOnLine, type ArchiveEndSegment } from './archive-end';

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
  /** The last restartpoint's timeline: behind replay's own after a timeline switch (archive-end.ts, replayTimelineAt). */
  checkpointTimeline: number;
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
  return { inRecovery: r.r, pause: r.pause, lsn: r.lsn, time: r.ts, checkpointTimeline: Number(r.tli) };
}

interface WaitArgs extends StoppedReplay {
  clientConfig: ClientConfig;
  hooks: ReplayHooks;
}

async function waitForPause(a: WaitArgs): Promise<ReplayResult> {
  const { hooks, input, marker } = a;
  const pollMs = hooks.pollMs ?? 1000;
  const latest = 'latest' in input.target;
  const archiveEnd = new ArchiveEnd(a.readWal, marker.backup);
  // The timeline the result reports is read from the archive's history files: read while replay runs.
  archiveEnd.warm();
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
        const timeline = o.lsn ? await archiveEnd.timelineAt(o.lsn, o.checkpointTimeline) : o.checkpointTimeline;
        return result(marker, o, timeline);
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

function result(marker: RestoreMarker, o: Observed, timeline: number): ReplayResult {
  const seg = marker.backup.walSegmentSize;
  const start = parseLsn(marker.backup.startLsn);
  const at = o.lsn ? parseLsn(o.lsn) : start;
  // A pause right after a segment switch sits on the next segment's first byte: that segment was not replayed.
  const last = at > start ? at - 1n : start;
  return {
    paused: true,
    lsn: formatLsn(at),
    ...(o.time ? { time: o.time } : {}),
    timeline,
    walSegmentsReplayed: Number(segnoOfLsn(last, seg) - segnoOfLsn(start, seg)) + 1,
    walBytesReplayed: Number(at > start ? at - start : 0n),
  };
}
