// Servers the sandbox runs as its own children (redis-server, pgbouncer):
// configuration, pid file and log under the state directory, started and
// waited for until they answer, stopped with the rest on Ctrl-C.
//
// A `lifeboat dev` killed with SIGKILL cannot stop its children, and the next
// start would find their ports taken. Such a leftover is found through its
// pid file and stopped first, but only when its command line names our own
// configuration file: a pid file can outlive its process, and the pid be
// reused by anything.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LifeboatError } from '../errors';
import { stopChild } from './child';

export interface DaemonSpec {
  /** As an operator knows it: "redis-server", "pgbouncer". */
  name: string;
  bin: string;
  args: string[];
  /** Its stdout and stderr, appended. */
  logFile: string;
  pidFile: string;
  /** A string only our own server has in its command line (its configuration file). */
  mark: string;
  /** True once it answers; an error counts as not yet. */
  ready(): Promise<boolean>;
  /** What to check when it does not start. */
  hints: string[];
  say(line: string): void;
}

export interface Daemon {
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  await stopLeftover(spec);
  // The log is appended to across starts: a failure shows only this start's lines.
  const logFrom = existsSync(spec.logFile) ? statSync(spec.logFile).size : 0;
  const out = openSync(spec.logFile, 'a');
  const child = spawn(spec.bin, spec.args, { stdio: ['ignore', out, out] });
  closeSync(out);
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  const stop = () => stopChild(child);
  const fail = async (what: string) => {
    await stop();
    return new LifeboatError('TOOL_FAILED', what, { hints: [`see ${spec.logFile}`, ...spec.hints] });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    // A binary that is not installed never starts, so it never exits either.
    if (spawnError) {
      throw new LifeboatError('TOOL_FAILED', `cannot run ${spec.bin}: ${spawnError.message}`, {
        hints: ['install what is missing: bash scripts/setup.sh (Debian packages redis-server and pgbouncer)'],
      });
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw await fail(
        `${spec.name} exited (${child.exitCode ?? child.signalCode}) while starting: ${logTail(spec.logFile, logFrom)}`,
      );
    }
    if (await spec.ready().catch(() => false)) return { stop };
    if (Date.now() > deadline) throw await fail(`${spec.name} did not answer within ${START_TIMEOUT_MS / 1000} s`);
    await sleep(200);
  }
}

function logTail(file: string, from: number): string {
  const text = existsSync(file) ? readFileSync(file).subarray(from).toString('utf8').trim() : '';
  return text.split('\n').slice(-5).join(' | ') || '(its log is empty)';
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

async function stopLeftover(spec: DaemonSpec): Promise<void> {
  let pid: number;
  let cmdline: string;
  try {
    pid = Number(readFileSync(spec.pidFile, 'utf8').trim());
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return; // no pid file, or its process is gone
  }
  if (!Number.isInteger(pid) || pid <= 1 || !cmdline.includes(spec.mark)) return;
  spec.say(`stopping the ${spec.name} that an earlier lifeboat dev left running (pid ${pid})`);
  signal(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
  if (alive(pid)) signal(pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone in the meantime; anything else shows as a taken port right after.
  }
}
