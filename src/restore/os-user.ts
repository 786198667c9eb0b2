// Running things as the PostgreSQL OS user (runbook cluster.osUser) with an
// environment we choose, not the worker's whole environment.
//
// The worker's environment holds the secrets of every runbook it serves
// (primary passwords, webhook URLs); a postmaster keeps its environment for
// its whole life, hands it to every restore_command and archive_command, and
// prints it into its log at log_min_messages = debug3 and below. So the
// postmaster gets only what `lifeboat archive-get/archive-push` need and no
// secret: those are in its credentials file (./secret-file.ts), whose path
// alone is in the environment; never on a command line, where `ps` and error
// messages would show them.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import { chown, rename, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { LifeboatError, type ErrorCode } from '../errors';
import { CREDENTIALS_FILE_ENV } from '../repository/credentials-file';
import { credentialEnvNames } from '../repository/roles';
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
export function spawnAsOsUser(
  user: string,
  bin: string,
  args: string[],
  env: Record<string, string>,
  stdio: StdioOptions,
): ChildProcess {
  const [cmd, argv] = asUserArgv(user, bin, args);
  return spawn(cmd, argv, { env, stdio });
}

export interface OsToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool as the OS user and returns its exit code and output; never throws for a non-zero exit. */
export function runAsOsUser(
  user: string,
  bin: string,
  args: string[],
  env: Record<string, string> = baseEnv(),
): Promise<OsToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawnAsOsUser(user, bin, args, env, ['ignore', 'pipe', 'pipe']);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-65536)));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    child.on('error', (e) =>
      reject(
        new LifeboatError('TOOL_FAILED', `could not run ${bin} as ${user}: ${e.message}`, {
          hints: [
            'is cluster.pgBin in the runbook the PostgreSQL bin directory on this host?',
            `does the OS user ${user} exist here?`,
          ],
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
  throw new LifeboatError(
    opts.code ?? 'TOOL_FAILED',
    `${opts.what} failed (exit ${r.code})${tailOf(r.stderr || r.stdout)}`,
    {
      hints: opts.hints,
    },
  );
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
 * Environment variables whose values are secrets a postmaster's commands may
 * need: never put in its environment (PostgreSQL prints it at debug3 and
 * below), carried in its credentials file instead (src/restore/secret-file.ts).
 * The AWS SDK's key variables, every variable the runbook's
 * repository.credentials name, and its encryption keys' variables.
 */
export function postmasterSecretEnvNames(runbook: Runbook): string[] {
  // Every repository (`repositories:`), or the one.
  const repos: Array<Runbook['repository']> = (runbook as { repositories?: Array<Runbook['repository']> })
    .repositories ?? [runbook.repository];
  const names = [...AWS_SECRET_ENVS];
  for (const repo of repos) {
    // Encryption keys too (repository.encryption, src/repository/keys.ts): archive-get decrypts with them.
    const keyEnvs = repo.encryption
      ? [repo.encryption, ...(repo.encryption.previous ?? [])].flatMap((k) => (k.keyEnv ? [k.keyEnv] : []))
      : [];
    for (const n of [...credentialEnvNames(repo.credentials), ...keyEnvs]) if (!names.includes(n)) names.push(n);
  }
  return names;
}

/** The AWS SDK's secret variables (the key id travels with its secret). */
const AWS_SECRET_ENVS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
];

/**
 * LIFEBOAT_* variables archive-get and archive-push read. Others stay out:
 * LIFEBOAT_WEBHOOK_URL and LIFEBOAT_CHATOPS_SIGNING_SECRET are secrets.
 */
const LIFEBOAT_ENVS = /^LIFEBOAT_(NODE|ARCHIVE_GET_LOG|RUNBOOKS_DIR|TOOLS_DIR|DEBUG|LOG_LEVEL|[A-Z]+_BIN)$/;

/**
 * What the restored postmaster needs for `lifeboat archive-get` (and, once
 * promoted, `archive-push`), none of it secret: PATH, the AWS SDK's settings
 * (region, endpoint, profile names, file paths), the LIFEBOAT_* variables
 * those commands read, the runbook's repository endpoint and region
 * variables, and the path of its credentials file when given. The secrets
 * (postmasterSecretEnvNames) are in that file, never here.
 *
 * restore_command names the repository by URL (`--repo`), so the S3 client
 * there looks for the endpoint under its default names, where a worker
 * environment may hold another store's endpoint. The runbook's endpoint is
 * therefore also given as AWS_ENDPOINT_URL_S3, the first default name.
 */
export function postmasterEnv(runbook: Runbook, credentialsFile?: string): Record<string, string> {
  const env = baseEnv();
  const { endpointEnv, regionEnv } = runbook.repository;
  const secret = new Set(postmasterSecretEnvNames(runbook));
  // Every repository's endpoint and region variables: restore_command's --fallback-repo names them (src/repository/multi.ts).
  const named = new Set(
    runbook.repositories.flatMap((r) => [r.endpointEnv, r.regionEnv]).filter((n): n is string => !!n),
  );
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || secret.has(k)) continue;
    if ((k.startsWith('AWS_') && !/SECRET|TOKEN|PASSWORD|ACCESS_KEY/.test(k)) || LIFEBOAT_ENVS.test(k) || named.has(k))
      env[k] = v;
  }
  const endpoint = endpointEnv ? process.env[endpointEnv] : undefined;
  if (endpoint) env.AWS_ENDPOINT_URL_S3 = endpoint;
  const region = regionEnv ? process.env[regionEnv] : undefined;
  if (region) env.AWS_REGION = region;
  if (credentialsFile) env[CREDENTIALS_FILE_ENV] = credentialsFile;
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
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `the OS user ${JSON.stringify(user)} (runbook cluster.osUser) does not exist on this host`,
      {
        hints: ['set cluster.osUser to the user that runs PostgreSQL here (usually postgres)'],
        cause: err,
      },
    );
  }
}

/** Gives a path we created to the OS user (a no-op unless we are root, when it already is theirs). */
export async function chownToUser(p: string, user: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await osUserIds(user);
  await chown(p, uid, gid);
}

/** Replaces a file of a data directory atomically (a temporary name, then rename), mode 0600, owned by the OS user. */
export async function writeOwnedFile(file: string, text: string, osUser: string): Promise<void> {
  const tmp = `${file}.lifeboat-tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600 });
    await chownToUser(tmp, osUser);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
