// The real `lifeboat` binary (bin/lifeboat, the compiled CLI), run the way an
// operator runs it: end-to-end tests assert its exit code and full output.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

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
