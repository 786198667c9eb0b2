// A restore drill from the warm standby (DESIGN.md §4.4), without consuming
// it: the drill's restore-base-backup clones the RUNNING standby with
// pg_basebackup taken from the standby itself (PostgreSQL takes a base
// backup from a hot standby: it starts at the standby's last restartpoint
// and ends at its replay position), into drill.dataDir. replay-wal then
// writes the drill's own recovery settings over the copied ones (the apply
// delay goes, the target comes in) and replays the rest from the archive,
// exactly as after a restore from a backup. The standby keeps replaying
// throughout; nothing in standby.dataDir is written, moved or stopped. On a
// pgBackRest stanza the clone's restore_command is pointed at drill.dataDir
// first (src/standby/copy.ts): as copied it names the standby's directory.
//
// Used only when provably right: the standby healthy, on the drill's host
// (the clone is taken over loopback), and its replay position before the
// target (a copy cannot replay backwards, and PostgreSQL refuses a target
// before the point where the copy becomes consistent). The position is read
// again AFTER the copy: the standby replayed on while it was taken, and the
// copy ends at or before where it then stood. Otherwise `why` says what kept
// it from being used and the drill restores a backup, as it always did.
import { spawn } from 'node:child_process';
import { readFile, readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { manifestEndLsn, parseBackupLabel } from '../backup/base-backup';
import { stderrTail } from '../backup/run-tool';
import { LifeboatError, errorMessage } from '../errors';
import { primaryLibpqEnv } from '../pg/connect';
import { describeTarget, type StandbySource, type UseStandbyResult } from '../recovery/contract';
import { takeClaim } from '../restore/claim';
import { ensureServerConfig } from '../restore/config-files';
import { isKeptEntry, prepareDataDir } from '../restore/data-dir';
import { readMarker } from '../restore/marker';
import { asUserArgv, baseEnv } from '../restore/os-user';
import { requireFreePort } from '../restore/port';
import { restoreSite } from '../restore/site';
import type { Runbook } from '../runbook/schema';
import { formatDelay } from '../standby/conf';
import { isBeforeTarget } from '../standby/adopt';
import { copyDirectoryProblem, markStandbyCopy, pointCopyAtItself } from '../standby/copy';
import { observeStandby, readStandbyStatus } from '../standby/status';
import type { CloneStandbyInput } from './contract';

export interface CloneHooks {
  signal?: AbortSignal;
  /** pg_basebackup's own progress (-P), as it reports it. */
  onProgress?: (p: { phase: 'cloning'; bytes: number; totalBytes: number }) => void;
}

export async function cloneStandbyForDrill(
  runbook: Runbook,
  input: CloneStandbyInput,
  hooks: CloneHooks = {},
): Promise<UseStandbyResult> {
  const drill = restoreSite(runbook, 'drill');
  const sb = runbook.standby;
  if (!sb) return { used: false, why: `runbook ${runbook.name} declares no standby` };
  const standby = restoreSite(runbook, 'standby');
  // A retry after the clone finished: this run's marker in drill.dataDir says so.
  const there = await readMarker(drill.dataDir);
  if (
    there?.workflowId === input.workflowId &&
    there.runId === input.runId &&
    there.state === 'extracted' &&
    there.result?.standby
  ) {
    return { used: true, why: clonedWhy(runbook, there.result.standby, input), result: there.result };
  }
  if (sb.host !== drill.host)
    return {
      used: false,
      why: `the standby is on host ${sb.host} and the drill on host ${drill.host}: the standby is cloned over loopback, on its own host`,
    };
  if ('xid' in input.target)
    return { used: false, why: "a transaction id target cannot be placed against the standby's replay position" };
  const status = await readStandbyStatus(runbook);
  if (!status.healthy || !status.backup || !status.backupId || !status.replayLsn) {
    return { used: false, why: `the standby is not usable: ${status.fellOff ?? status.warnings[0] ?? status.state}` };
  }
  const at = { lsn: status.replayLsn, ...(status.lastReplayTime ? { time: status.lastReplayTime } : {}) };
  const before = await isBeforeTarget(runbook, input.target, at, status.backupId, status.backup, input.restorePoint);
  if (before !== true)
    return {
      used: false,
      why: `the standby had replayed to LSN ${at.lsn}${at.time ? `, last commit ${at.time}` : ''}, ${before}: a copy of it cannot replay backwards, so the drill restores a backup`,
    };
  const settings = await copyDirectoryProblem(runbook, standby.dataDir, drill.dataDir);
  if (settings) return { used: false, why: `${settings}, so the drill restores a backup` };

  // drill.dataDir as restore-base-backup takes it: claimed (with drill.port),
  // the port free, an earlier drill's copy moved aside, never deleted.
  const claim = await takeClaim({
    dataDir: drill.dataDir,
    workflowId: input.workflowId,
    runId: input.runId,
    instance: 'drill',
    port: drill.port,
    field: 'drill.dataDir',
  });
  let finished = false;
  try {
    await requireFreePort(drill, input.workflowId);
    const prepared = await prepareDataDir({
      pg: drill.pg,
      runbookName: runbook.name,
      mode: 'side-by-side',
      workflowId: input.workflowId,
      runId: input.runId,
      backupId: `standby-clone-${input.runId}`,
      instance: 'drill',
    });
    if (prepared.kind === 'reuse')
      throw new LifeboatError(
        'DATA_DIR_NOT_EMPTY',
        `drill.dataDir ${drill.dataDir} holds an extraction of this run that is not a clone of the standby`,
        { hints: ['nothing was changed; retry the step'] },
      );
    // pg_basebackup writes only into an empty directory; what Lifeboat moved aside inside a mount point is not.
    const kept = (await readdir(drill.dataDir)).filter(isKeptEntry);
    if (kept.length > 0)
      return {
        used: false,
        why: `drill.dataDir ${drill.dataDir} holds ${kept.join(', ')} (a mount point's kept entries): pg_basebackup writes only into an empty directory`,
      };

    const copied = await runCloneBackup(
      runbook,
      { port: standby.port, target: drill.dataDir, label: `lifeboat drill ${input.workflowId} from standby` },
      hooks,
    ).catch((err: unknown) => ({ failed: err }));
    if ('failed' in copied) {
      if (hooks.signal?.aborted) throw copied.failed;
      // pg_basebackup removes what it wrote when it fails: drill.dataDir is empty again.
      return {
        used: false,
        why: `pg_basebackup from the standby (127.0.0.1:${standby.port}) failed: ${errorMessage(copied.failed).split('\n').slice(0, 3).join(' ')}`,
      };
    }
    // Provably ours: pg_basebackup made it in this call in the empty
    // directory prepared above, and no postmaster ever ran on it.
    const removeClone = async () => {
      for (const e of await readdir(drill.dataDir))
        if (!isKeptEntry(e)) await rm(path.join(drill.dataDir, e), { recursive: true, force: true });
    };
    // The standby's engine settings pointed at the clone (pgBackRest's --pg1-path: ../standby/copy.ts), before anything reads them.
    const pointed = await pointCopyAtItself(runbook, drill.dataDir, standby.dataDir, { archive: false }).then(
      () => undefined,
      (err: unknown) => errorMessage(err).split('\n')[0],
    );
    if (pointed) {
      await removeClone();
      return { used: false, why: `${pointed}: the clone was removed and the drill restores a backup` };
    }
    const label = parseBackupLabel(await readFile(path.join(drill.dataDir, 'backup_label'), 'utf8'));
    const end = manifestEndLsn(await readFile(path.join(drill.dataDir, 'backup_manifest'), 'utf8'));
    const source: StandbySource = {
      from: standby.dataDir,
      replayLsn: end.endLsn,
      backupId: status.backupId,
      walSegmentSize: status.backup.walSegmentSize,
    };
    // The copied marker is the standby's: replaced at once by this drill's,
    // so the copy is provably the drill's (teardown removes it) and never taken for the standby.
    const result = await markStandbyCopy({
      site: drill,
      run: { workflowId: input.workflowId, runId: input.runId, mode: 'side-by-side' },
      backupId: status.backupId,
      backup: { startLsn: label.startLsn, timeline: label.timeline, walSegmentSize: status.backup.walSegmentSize },
      bytes: copied.bytes,
      files: copied.files,
      ...(prepared.movedAside ? { movedAside: prepared.movedAside } : {}),
      source,
    });
    // Where the standby stands now bounds where the copy ends: judged again from there.
    const now = await observeStandby(runbook).catch(() => undefined);
    const after = now?.lsn
      ? await isBeforeTarget(
          runbook,
          input.target,
          { lsn: now.lsn, ...(now.ts ? { time: now.ts } : {}) },
          status.backupId,
          status.backup,
          input.restorePoint,
        )
      : 'its position could not be read after the copy';
    if (after !== true) {
      await removeClone();
      return {
        used: false,
        why: `the standby replayed on while it was cloned, to LSN ${now?.lsn ?? '?'}${now?.ts ? `, last commit ${now.ts}` : ''}, ${after}: the clone was removed and the drill restores a backup`,
      };
    }
    await ensureServerConfig(drill.dataDir, runbook);
    finished = true;
    return { used: true, why: clonedWhy(runbook, source, input, at), result };
  } finally {
    // As restore-base-backup: a drill keeps its directory and port until teardown.
    if (finished) await claim.handOver().catch(() => undefined);
    else await claim.release().catch(() => undefined);
  }
}

function clonedWhy(
  runbook: Runbook,
  s: StandbySource,
  input: CloneStandbyInput,
  at?: { lsn: string; time?: string },
): string {
  const pos = at ? `had replayed to LSN ${at.lsn}${at.time ? `, last commit ${at.time}` : ''}` : 'was healthy';
  return `the standby (delay ${formatDelay(runbook.standby!.delay)}) ${pos}, before ${describeTarget(input.target)}: cloned with pg_basebackup from the standby (consistent at LSN ${s.replayLsn}) while it kept replaying, instead of restoring a backup`;
}

/**
 * pg_basebackup from the standby into `target`, as the OS user (the copy is
 * the postmaster's), over 127.0.0.1 with the runbook's role and password
 * (the standby has the primary's roles; its pg_hba.conf needs a loopback
 * replication line, which standby build adds). -X none: a standby that
 * restores from the archive keeps no WAL a WAL sender could stream, so the
 * copy's replay-wal fetches it from the archive like any restore. No fsync:
 * a drill copy is thrown away, and a crash mid-drill fails the drill anyway.
 */
async function runCloneBackup(
  runbook: Runbook,
  c: { port: number; target: string; label: string },
  hooks: CloneHooks,
): Promise<{ bytes: number; files: number }> {
  const osUser = runbook.cluster.osUser;
  const libpq = primaryLibpqEnv(runbook);
  const env = {
    ...baseEnv(),
    ...libpq,
    PGHOST: '127.0.0.1',
    PGPORT: String(c.port),
    PGAPPNAME: 'lifeboat-drill-clone',
  };
  const args = ['-D', c.target, '-Fp', '-X', 'none', '-c', 'fast', '-l', c.label, '--no-sync', '-P', '-w'];
  const [cmd, argv] = asUserArgv(osUser, `${runbook.cluster.pgBin}/pg_basebackup`, args);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const abort = () => child.kill('SIGTERM');
    hooks.signal?.addEventListener('abort', abort, { once: true });
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      err = (err + s).slice(-8192);
      // -P writes "  1234/56789 kB (2%), 0/1 tablespace" lines ending in \r.
      const m = /(\d+)\/(\d+) kB/.exec(s.split('\r').filter(Boolean).pop() ?? '');
      if (m) hooks.onProgress?.({ phase: 'cloning', bytes: Number(m[1]) * 1024, totalBytes: Number(m[2]) * 1024 });
    });
    child.on('error', (e) =>
      reject(new LifeboatError('TOOL_FAILED', `could not run pg_basebackup as ${osUser}: ${e.message}`, { cause: e })),
    );
    child.on('close', (code, signal) => {
      hooks.signal?.removeEventListener('abort', abort);
      if (code === 0) return resolve();
      const tail = stderrTail(err, 4).join('; ');
      reject(
        new LifeboatError(
          'TOOL_FAILED',
          `pg_basebackup failed (${signal ? `signal ${signal}` : `exit ${code}`})${tail ? `: ${tail}` : ''}`,
          {
            hints: [
              `the role ${libpq.PGUSER} needs REPLICATION and a "host replication ${libpq.PGUSER} 127.0.0.1/32" line in the standby's pg_hba.conf (lifeboat standby build adds one)`,
            ],
          },
        ),
      );
    });
  });
  hooks.signal?.throwIfAborted();
  const manifest = JSON.parse(await readFile(path.join(c.target, 'backup_manifest'), 'utf8')) as {
    Files?: Array<{ Size: number }>;
  };
  const files = manifest.Files ?? [];
  return { bytes: files.reduce((n, f) => n + f.Size, 0), files: files.length };
}
