// Running things as the PostgreSQL OS user (runbook cluster.osUser) with an
// environment we choose, not the worker's whole environment.
//
// The worker's environment holds the secrets of every runbook it serves
// (primary passwords, webhook URLs); a postmaster keeps its environment for
// its whole life and hands it to every restore_command and archive_command.
// So the postmaster gets only what `lifeboat archive-get/archive-push` need,
// passed through spawn's environment rather than on a command line, where
// `ps` and error messages would show it.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import { chown } from 'node:fs/promises';
import { promisify } from 'node:util';
import { LifeboatError, type ErrorCode } from '../errors';
import type { Runbook } from '../runbook/schema';

const execFileAsync = promisify(execFile);

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** argv that runs `bin args` as `user`: through runuser when we are root, directly otherwise. */
export function asUserArgv(user: string, bin: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', user, '--', bin, ...args]] : [bin, args];
}

/** Spawns `bin` as the OS user with exactly `env` (runuser adds HOME, USER, SHELL and LOGNAME). */
export function spawnAsOsUser(user: string, bin: string, args: string[], env: Record<string, string>, stdio: StdioOptions): ChildProcess {
  const [cmd, argv] = asUserArgv(user, bin, args);
  return spawn(cmd, argv, { env, stdio });
}

export interface OsToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool as the OS user and returns its exit code and output; never throws for a non-zero exit. */
export function runAsOsUser(user: string, bin: string, args: string[], env: Record<string, string> = baseEnv()): Promise<OsToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawnAsOsUser(user, bin, args, env, ['ignore', 'pipe', 'pipe']);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-65536)));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    child.on('error', (e) =>
      reject(
        new LifeboatError('TOOL_FAILED', `could not run ${bin} as ${user}: ${e.message}`, {
          hints: ['is cluster.pgBin in the runbook the PostgreSQL bin directory on this host?', `does the OS user ${user} exist here?`],
          cause: e,
        }),
      ),
    );
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** Like runAsOsUser, but a non-zero exit is an error naming the tool and quoting its last words. */
export async function mustRunAsOsUser(
  user: string,
  bin: string,
  args: string[],
  opts: { what: string; code?: ErrorCode; hints?: string[]; env?: Record<string, string> },
): Promise<string> {
  const r = await runAsOsUser(user, bin, args, opts.env);
  if (r.code === 0) return r.stdout;
  throw new LifeboatError(opts.code ?? 'TOOL_FAILED', `${opts.what} failed (exit ${r.code})${tailOf(r.stderr || r.stdout)}`, {
    hints: opts.hints,
  });
}

function tailOf(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-6);
  return lines.length > 0 ? `:\n  ${lines.join('\n  ')}` : '';
}

/** A minimal environment for tools that need nothing from the worker. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  for (const k of ['LANG', 'LC_ALL', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/**
 * What the restored postmaster needs for `lifeboat archive-get` (and, once
 * promoted, `archive-push`): PATH, AWS_*, LIFEBOAT_*, and the runbook's
 * repository endpoint and region variables.
 *
 * restore_command names the repository by URL (`--repo`), so the S3 client
 * there looks for the endpoint under its default names, where a worker
 * environment may hold another store's endpoint. The runbook's endpoint is
 * therefore also given as AWS_ENDPOINT_URL_S3, the first default name.
 */
export function postmasterEnv(runbook: Runbook): Record<string, string> {
  const env = baseEnv();
  const { endpointEnv, regionEnv, encryption } = runbook.repository;
  // Encryption keys (repository.encryption): archive-get decrypts with them.
  const keyEnvs = encryption ? [encryption, ...(encryption.previous ?? [])].flatMap((k) => (k.keyEnv ? [k.keyEnv] : [])) : [];
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('AWS_') || k.startsWith('LIFEBOAT_') || k === endpointEnv || k === regionEnv || keyEnvs.includes(k)) env[k] = v;
  }
  const endpoint = endpointEnv ? process.env[endpointEnv] : undefined;
  if (endpoint) env.AWS_ENDPOINT_URL_S3 = endpoint;
  const region = regionEnv ? process.env[regionEnv] : undefined;
  if (region) env.AWS_REGION = region;
  return env;
}

const idCache = new Map<string, { uid: number; gid: number }>();

/** uid and gid of an OS user. */
export async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  const cached = idCache.get(user);
  if (cached) return cached;
  try {
    const uid = Number((await execFileAsync('id', ['-u', user])).stdout.trim());
    const gid = Number((await execFileAsync('id', ['-g', user])).stdout.trim());
    const ids = { uid, gid };
    idCache.set(user, ids);
    return ids;
  } catch (err) {
    throw new LifeboatError('RUNBOOK_INVALID', `the OS user ${JSON.stringify(user)} (runbook cluster.osUser) does not exist on this host`, {
      hints: ['set cluster.osUser to the user that runs PostgreSQL here (usually postgres)'],
      cause: err,
    });
  }
}

/** Gives a path we created to the OS user (a no-op unless we are root, when it already is theirs). */
export async function chownToUser(p: string, user: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await osUserIds(user);
  await chown(p, uid, gid);
}
