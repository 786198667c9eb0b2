// Runs a PostgreSQL tool (pg_basebackup, pg_verifybackup, pg_ctl...) and turns
// a failure into an operator-readable error with the tool's last words.
import { spawn } from 'node:child_process';
import { LifeboatError, type ErrorCode } from '../errors';

export interface RunToolOptions {
  /** Short name for messages: "pg_basebackup". */
  what: string;
  env?: Record<string, string>;
  cwd?: string;
  code?: ErrorCode;
  hints?: string[];
  onStderr?: (chunk: string) => void;
  onStdout?: (chunk: string) => void;
}

/** Resolves with stdout; rejects with a LifeboatError naming the tool, its exit code and stderr tail. */
export function runTool(bin: string, args: string[], opts: RunToolOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      out += s;
      opts.onStdout?.(s);
    });
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      // Keep the tail only: -P progress output would otherwise grow without bound.
      err = (err + s).slice(-8192);
      opts.onStderr?.(s);
    });
    child.on('error', (e) =>
      reject(
        new LifeboatError(opts.code ?? 'TOOL_FAILED', `could not run ${opts.what} (${bin}): ${e.message}`, {
          hints: ['is cluster.pgBin in the runbook the PostgreSQL bin directory on this host?', ...(opts.hints ?? [])],
          cause: e,
        }),
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(out);
      const tail = stderrTail(err, 6).join('\n  ');
      reject(
        new LifeboatError(
          opts.code ?? 'TOOL_FAILED',
          `${opts.what} failed (${signal ? `signal ${signal}` : `exit ${code}`})${tail ? `:\n  ${tail}` : ''}`,
          { hints: opts.hints },
        ),
      );
    });
  });
}

/** The last `max` lines a tool wrote on stderr, without blank lines and pg_basebackup's -P progress ("1234/5678 kB"). */
export function stderrTail(err: string, max: number): string[] {
  return err
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\d+\/\d+ kB/.test(l))
    .slice(-max);
}
