// Runs a runbook's command hook (a cache purge, a traffic switch): argv as
// written, no shell in between, a time limit, and on failure an error with
// the hook's last words. Hooks inherit the worker's environment: that is
// where they find their own credentials.
//
// Not execFile: its timeout signals the hook alone, and a grandchild (the
// curl a shell script started) keeps the pipes open, so the call never
// returns. The hook runs in a process group of its own, and the time limit
// and cancellation end the whole group.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, type ErrorCode } from '../errors';

export const HOOK_TIMEOUT_MS = 5 * 60_000;
/** After SIGTERM, how long the group has before SIGKILL. */
const KILL_GRACE_MS = 10_000;
/** Output kept for the error message: the tail is what matters. */
const KEEP_BYTES = 64 * 1024;

export interface HookOptions {
  /** Shown in messages: "cache hook /usr/local/bin/purge-cdn --all". */
  what: string;
  code: ErrorCode;
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  hints?: string[];
}

/** Quotes arguments with spaces or quotes, so the shown command line reads as it runs. */
export function showArgv(argv: readonly string[]): string {
  return argv.map((a) => (/[\s"'\\]/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' ');
}

function tail(text: string, lines = 6): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .join('\n  ');
}

export function runHook(argv: readonly string[], opts: HookOptions): Promise<{ stdout: string; stderr: string }> {
  const [bin, ...args] = argv;
  if (bin === undefined) return Promise.reject(new LifeboatError('RUNBOOK_INVALID', `${opts.what}: no program to run`));
  const timeoutMs = opts.timeoutMs ?? HOOK_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let stopped: 'timeout' | 'cancelled' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-KEEP_BYTES)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-KEEP_BYTES)));

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        /* the group is gone already */
      }
    };
    const stop = (why: 'timeout' | 'cancelled') => {
      if (stopped) return;
      stopped = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();

    const finish = () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    let settled = false;
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      finish();
      // The hook is gone; whatever of its group ignored SIGTERM goes now.
      if (stopped) killGroup('SIGKILL');
      if (code === 0 && !stopped) return resolve({ stdout, stderr });
      const last = tail(stderr) || tail(stdout);
      const said = last ? `:\n  ${last}` : '';
      let what: string;
      if (stopped === 'timeout')
        what = `${opts.what} did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped${said}`;
      else if (stopped === 'cancelled') what = `${opts.what} was stopped: the step was cancelled`;
      else if (code === null) what = `${opts.what} was killed by signal ${signal ?? 'unknown'}${said}`;
      else what = `${opts.what} failed (exit ${code})${said}`;
      reject(new LifeboatError(opts.code, what, { hints: opts.hints }));
    };
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      finish();
      reject(
        new LifeboatError(opts.code, `could not run ${opts.what}: ${err.message}`, {
          hints: [`is ${bin} installed and executable on this worker?`, ...(opts.hints ?? [])],
          cause: err,
        }),
      );
    });
    // Output may still be in the pipes when the hook exits, and its last
    // lines are what the operator needs: wait for 'close'. But a grandchild
    // left running may hold the pipes open for ever, so only briefly.
    child.on('exit', (code, signal) => {
      const settle = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        done(code, signal);
      }, 2000);
      child.once('close', () => {
        clearTimeout(settle);
        done(code, signal);
      });
    });
  });
}

/**
 * Where a hook's program is, as spawn would find it (a path, or the first
 * executable file of that name on this process's PATH), or why it cannot
 * run: checked in preflight without running the hook, which must run only
 * at its step.
 */
export async function findProgram(bin: string): Promise<{ path: string } | { missing: string }> {
  const runnable = async (p: string) => {
    const st = await stat(p).catch(() => undefined);
    if (!st?.isFile()) return false;
    return access(p, constants.X_OK).then(
      () => true,
      () => false,
    );
  };
  if (bin.includes('/')) {
    const st = await stat(bin).catch(() => undefined);
    if (!st) return { missing: `${bin} does not exist on this host` };
    if (!st.isFile()) return { missing: `${bin} is not a file` };
    return (await runnable(bin)) ? { path: bin } : { missing: `${bin} is not executable by this worker's user` };
  }
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, bin);
    if (await runnable(p)) return { path: p };
  }
  return { missing: `${bin} is not an executable file on this worker's PATH (${dirs.join(':') || 'empty'})` };
}
