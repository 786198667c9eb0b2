// `lifeboat dev`'s sandbox directory and the PostgreSQL instances in it:
// refusing a second `lifeboat dev` or another --pg-port on the same
// sandbox, the directories the postgres OS user writes, and the copies
// recoveries and drills of the demo started there (a promoted one is started
// again, the others stopped with the rest).
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LifeboatError, errorMessage } from '../../errors';
import { chownToOsUser, pgCtl, startSandboxPrimary, stopSandboxPrimary, type SandboxPg } from '../../dev/sandbox-pg';
import { devCommand, requireReachable } from '../../dev/reach';
import {
  drillDataDir,
  isLifeboatProcess,
  promotedCopy,
  readSandboxState,
  restoreDataDir,
  stateDirFlag,
} from '../../dev/sandbox-state';
import type { RestoreMarker } from '../../restore/marker';

export const OS_USER = 'postgres';

export function say(line: string): void {
  process.stderr.write(`[lifeboat dev] ${line}\n`);
}

export const isRunning = (pg: SandboxPg) =>
  pgCtl(pg, 'status').then(
    () => true,
    () => false,
  );

/** Two `lifeboat dev` on one state directory would start one primary twice and stop each other's servers. */
export function refuseSecondDev(state: string): void {
  const other = readSandboxState(state);
  if (other && other.pid !== process.pid && isLifeboatProcess(other.pid)) {
    throw new LifeboatError('INPUT_INVALID', `lifeboat dev is already running for ${state} (pid ${other.pid})`, {
      hints: [
        'use that one (its terminal shows what to try), or stop it with Ctrl-C first',
        `or start a second sandbox in a directory of its own: ${devCommand()} --state-dir /tmp/lifeboat-dev-2`,
      ],
    });
  }
}

export async function prepareStateDir(state: string): Promise<void> {
  mkdirSync(path.join(state, 'runbooks'), { recursive: true });
  // archive_command runs as the postgres OS user and writes the repository:
  // the sandbox directories belong to that user.
  for (const d of ['pg', 'repo', 'scratch']) ownDir(state, d, true);
  // The project's bin/lifeboat, dist/ and node, and the repository: each
  // refusal names the directory that stops postgres (a 0700 home) and what to do.
  await requireReachable(OS_USER, state);
}

/** <state>/<name>, created; given to the postgres OS user when a server running as that user writes in it. */
export function ownDir(state: string, name: string, forOsUser: boolean): string {
  const dir = path.join(state, name);
  mkdirSync(dir, { recursive: true });
  if (forOsUser) chownToOsUser(dir, OS_USER);
  return dir;
}

/**
 * initdb wrote the port into postgresql.conf when the sandbox was created,
 * and a restart keeps it: another --pg-port would have Lifeboat look for the
 * primary where it is not (and name the wrong restore port in the runbook).
 */
export function checkPrimaryPort(pg: SandboxPg, state: string): void {
  let conf: string;
  try {
    conf = readFileSync(path.join(pg.dataDir, 'postgresql.conf'), 'utf8');
  } catch {
    return; // a new sandbox
  }
  const ports = [...conf.matchAll(/^\s*port\s*=\s*(\d+)/gm)].map((m) => Number(m[1]));
  const existing = ports[ports.length - 1];
  if (existing !== undefined && existing !== pg.port) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `the sandbox primary in ${pg.dataDir} was created on port ${existing}, not --pg-port ${pg.port}`,
      {
        hints: [
          `use this sandbox: ${devCommand()}${stateDirFlag(state)} --pg-port ${existing}`,
          `or start a new sandbox on port ${pg.port} in a directory of its own: ${devCommand()} --state-dir /tmp/lifeboat-dev-2 --pg-port ${pg.port} (this one, in ${state}, is kept)`,
        ],
      },
    );
  }
}

/**
 * A copy an earlier recovery promoted is the application's primary now
 * (pgbouncer was pointed at it): it is started again, never moved or
 * deleted. Returns it, and whether it runs.
 */
export async function startPromotedCopy(pg: SandboxPg, state: string): Promise<PromotedNote | undefined> {
  const copy = await promotedCopy(state);
  if (!copy) return undefined;
  const instance: SandboxPg = {
    ...pg,
    dataDir: copy.dataDir,
    logFile: copy.marker.logFile ?? path.join(copy.dataDir, 'lifeboat-postgres.log'),
  };
  const found = `a copy promoted by an earlier recovery (workflow ${copy.marker.workflowId}) is in ${copy.dataDir}`;
  try {
    if (await isRunning(instance)) say(`${found}, running`);
    else {
      say(`${found}: starting it again`);
      await startSandboxPrimary(instance);
    }
    return { marker: copy.marker, dataDir: copy.dataDir, running: true };
  } catch (err) {
    say(`could not start it: ${errorMessage(err)} (see ${instance.logFile})`);
    return { marker: copy.marker, dataDir: copy.dataDir, running: false };
  }
}

export interface PromotedNote {
  marker: RestoreMarker;
  dataDir: string;
  running: boolean;
}

export async function stopRestoredCopies(pg: SandboxPg, state: string): Promise<void> {
  for (const dataDir of [restoreDataDir(state), drillDataDir(state)]) {
    const instance: SandboxPg = { ...pg, dataDir };
    if (!(await isRunning(instance))) continue;
    say(`stopping the PostgreSQL in ${dataDir}`);
    await stopSandboxPrimary(instance);
  }
}
