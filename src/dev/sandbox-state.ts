// What a running `lifeboat dev` tells the other commands about its sandbox:
// sandbox.json in the state directory (its pid, its ports), written when it
// starts and removed when it stops; and the restored copies the demo
// runbook's recoveries and drills leave beside the primary.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { readMarker, type RestoreMarker } from '../restore/marker';
import { projectRoot } from '../tools';

export interface SandboxState {
  /** The `lifeboat dev` process. */
  pid: number;
  /** False while it is still starting. */
  ready: boolean;
  startedAt: string;
  uiPort: number;
  temporalAddress: string;
  pgPort: number;
  redisPort: number;
  pgbouncerPort: number;
  /** Where the demo runbook's side-by-side restore listens (restore.port). */
  restorePort: number;
  runbooksDir: string;
}

/** The database the demo application uses, behind pgbouncer under the same name. */
export const DEMO_DATABASE = 'appdb';

/** restore.dataDir and drill.dataDir of the demo runbook (demoRunbookYaml: <stateDir>/recovery, <stateDir>/drill). */
export const restoreDataDir = (state: string): string => path.join(state, 'recovery');
export const drillDataDir = (state: string): string => path.join(state, 'drill');

const stateFile = (state: string): string => path.join(state, 'sandbox.json');

export function writeSandboxState(state: string, s: SandboxState): void {
  writeFileSync(stateFile(state), `${JSON.stringify(s, null, 2)}\n`);
}

/** Removes sandbox.json if it is this process's (a second `lifeboat dev` refused at start must not remove the first's). */
export function clearSandboxState(state: string): void {
  if (readSandboxState(state)?.pid === process.pid) rmSync(stateFile(state), { force: true });
}

export function readSandboxState(state: string): SandboxState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(state), 'utf8')) as SandboxState;
  } catch {
    return undefined;
  }
}

/** Whether pid is a running `lifeboat` process (a pid left in a file may have been reused by anything). */
export function isLifeboatProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('dist', 'src', 'cli', 'main.js'));
  } catch {
    return false;
  }
}

/** The sandbox of a `lifeboat dev` that is up, or an error saying how to get one. */
export function runningSandbox(state: string): SandboxState {
  const s = readSandboxState(state);
  // npm passes its own flags to the script only after `--`.
  const flag = stateDirFlag(state);
  const start = `start it first, in another terminal: npm start${flag ? ` --${flag}` : ''} (or ${cliPath()} dev${flag}), and wait for "Lifeboat sandbox is up."`;
  const notRunning = (why: string) =>
    new LifeboatError('PG_UNREACHABLE', `the Lifeboat sandbox in ${state} is not running: ${why}`, {
      hints: [
        start,
        '--state-dir must name the directory lifeboat dev uses (default .lifeboat/dev, relative to where it was started; with npm start: npm start -- --state-dir <dir>)',
      ],
    });
  if (!s)
    throw notRunning(
      existsSync(state) ? 'no lifeboat dev has it open (no sandbox.json)' : 'the directory does not exist',
    );
  if (!isLifeboatProcess(s.pid)) throw notRunning(`the lifeboat dev that started it (pid ${s.pid}) is gone`);
  if (!s.ready) {
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `the Lifeboat sandbox in ${state} is still starting (lifeboat dev, pid ${s.pid})`,
      {
        hints: ['wait for "Lifeboat sandbox is up." in its terminal, then run this again'],
      },
    );
  }
  return s;
}

/** A copy an earlier recovery of the demo runbook promoted, still in restore.dataDir. */
export async function promotedCopy(state: string): Promise<{ dataDir: string; marker: RestoreMarker } | undefined> {
  const dataDir = restoreDataDir(state);
  const marker = await readMarker(dataDir);
  return marker?.state === 'promoted' ? { dataDir, marker } : undefined;
}

/** How to run this CLI from where the operator stands: bin/lifeboat is a sh script, not for `node`. */
export function cliPath(): string {
  const rel = path.relative(process.cwd(), path.join(projectRoot(), 'bin', 'lifeboat'));
  return rel.includes(path.sep) ? rel : `./${rel}`;
}

/** ` --state-dir <dir>` unless it is the default, as the operator would type it. */
export function stateDirFlag(state: string): string {
  if (state === path.resolve('.lifeboat/dev')) return '';
  const rel = path.relative(process.cwd(), state);
  return ` --state-dir ${rel && !rel.startsWith('..') ? rel : state}`;
}
