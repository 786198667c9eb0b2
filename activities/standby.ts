// Activities of the warm standby (DESIGN.md §4.4), on the standby's host
// queue (`lifeboat-host-<standby.host>`, today restore.host): build it (for a
// schedule or a workflow that keeps it fresh), read its status, and let a
// recovery take it over instead of restoring a backup (src/standby/adopt.ts).
// On either engine of the runbook: Lifeboat's own repository, or a
// pgBackRest stanza (built with pgbackrest restore --type=standby).
import { Context } from '@temporalio/activity';
import type { RestoreProgress, UseStandbyInput, UseStandbyResult } from '../src/recovery/contract';
import { restoreText } from '../src/recovery/progress-text';
import { loadRunbook } from '../src/runbook/load';
import { buildStandby as build, type StandbyBuildResult } from '../src/standby/build';
import { useStandby as adopt } from '../src/standby/adopt';
import { readStandbyStatus, standbyLine, type StandbyStatus } from '../src/standby/status';
import { heartbeat, lifeboatActivity } from './failure';

/**
 * Builds the standby from the newest usable backup, or keeps (restarts) the
 * one there. Run twice: the second finds the first's standby healthy and
 * keeps it, or its interrupted extraction (provably the standby's, by its
 * marker) and moves it aside before building again.
 */
export async function buildStandby(input: { runbook: string; force?: boolean }): Promise<StandbyBuildResult> {
  const ctx = Context.current();
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    let last = { phase: '', at: 0 };
    return build(runbook, {
      signal: ctx.cancellationSignal,
      ...(input.force ? { force: true } : {}),
      onProgress: (p) => {
        if (p.phase === last.phase && Date.now() - last.at < 1000) return;
        last = { phase: p.phase, at: Date.now() };
        heartbeat('bytes' in p ? { ...p, text: restoreText(p as RestoreProgress) } : p);
      },
    });
  });
}

/** Where the standby is against the archive, and the same in one line (for workflows: `line`). Reads only. */
export async function standbyStatus(input: { runbook: string }): Promise<StandbyStatus & { line: string }> {
  return lifeboatActivity(async () => {
    const status = await readStandbyStatus(await loadRunbook(input.runbook));
    return { ...status, line: standbyLine(status) };
  });
}

/**
 * restore-base-backup from the warm standby: when it is healthy and has not
 * replayed past the target, its replay is paused, it is stopped and its
 * directory moved into restore.dataDir with this recovery's marker; replay-wal
 * then goes on from there. Otherwise nothing is touched and `why` says what
 * kept it from being used (the workflow then restores a backup). Run twice:
 * the markers show a takeover that already happened, and it is finished or
 * returned as it was.
 */
export async function useStandby(input: UseStandbyInput): Promise<UseStandbyResult> {
  return lifeboatActivity(async () => adopt(await loadRunbook(input.runbook), input));
}
