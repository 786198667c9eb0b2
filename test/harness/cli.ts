// The real `lifeboat` binary (bin/lifeboat, the compiled CLI), run the way an
// operator runs it: end-to-end tests assert its exit code and full output.
import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { stopChild } from '../../src/dev/child';
import { waitFor } from './ports';

export const CLI = path.resolve(__dirname, '../../bin/lifeboat');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const exec = promisify(execFile);

/** A `lifeboat(...args)` that runs the binary with the environment `env()` gives at the time of the call; a non-zero exit is a result, not a throw. */
export function cliRunner(env: () => NodeJS.ProcessEnv): (...args: string[]) => Promise<CliResult> {
  return async (...args) => {
    try {
      const { stdout, stderr } = await exec(CLI, args, { env: env(), maxBuffer: 16 << 20 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as CliResult;
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
}

export interface CliWorker {
  /** The worker's process id (bin/lifeboat execs node), for a test that SIGKILLs it; also its Temporal identity `<pid>@<hostname>`. */
  pid: number;
  /** Everything the worker printed so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

/** `lifeboat worker --host <host>` as a process of its own, once it says it polls. */
export async function startCliWorker(host: string, env: NodeJS.ProcessEnv): Promise<CliWorker> {
  const child = spawn(CLI, ['worker', '--host', host], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const worker = { pid: child.pid!, log: () => log, stop: () => stopChild(child) };
  try {
    await waitFor(
      'the worker to poll',
      async () => {
        if (child.exitCode !== null) throw new Error(`lifeboat worker exited with ${child.exitCode}:\n${log}`);
        return log.includes('lifeboat worker polling') ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
  } catch (err) {
    await worker.stop();
    throw err;
  }
  return worker;
}
