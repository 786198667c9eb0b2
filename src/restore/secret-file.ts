// The credentials file of a postmaster Lifeboat starts (a restored copy, the
// warm standby): the secrets its restore_command (and, once promoted, its
// archive_command) needs, in a file only cluster.osUser can read, instead of
// in its environment, which PostgreSQL prints into its log at debug3 and
// below (src/repository/credentials-file.ts has the format and the reader).
//
// Where: <dataDir>/pg_wal/.lifeboat-credentials/credentials.json, directory
// 0700 and file 0600, both owned by the OS user. Inside the data directory,
// so it lives and goes with the copy (a drill's teardown removes it with the
// directory; a restore again moves the directory aside, and moveAside removes
// the file first); under pg_wal, whose contents a base backup never copies
// (PostgreSQL sends pg_wal empty; pg_basebackup streams only WAL), so a
// backup of a promoted copy never carries it.
//
// What: one identity only, the one the copy needs now (least privilege):
//   replaying (restore_command, the prefetcher): the restore identity;
//   promoted by a recovery: the archive identity, because the copy is now
//     the primary and its archive_command (the old primary's, from the
//     backup) must go on archiving; it can write but never delete;
//   promoted by a drill or a repair (archive_mode = off): the file is removed.
// Stopping the copy (the end of a dry run) removes the file too.
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { CredentialsFile, FileRepositorySettings } from '../repository/credentials-file';
import { repositoryOptions } from '../repository';
import { credentialEnvNames, resolveIdentity, type RoleCredentials, type StorageRole } from '../repository/roles';
import type { Runbook } from '../runbook/schema';
import { chownToUser, postmasterEnv, postmasterSecretEnvNames } from './os-user';
import type { PgHost } from './postmaster';

export const CREDENTIALS_DIR = path.join('pg_wal', '.lifeboat-credentials');

export function credentialsFilePath(dataDir: string): string {
  return path.join(dataDir, CREDENTIALS_DIR, 'credentials.json');
}

/** The AWS SDK's own names: the default chain reads them, and `--repo` invocations have nothing else. */
const AWS_KEY_NAMES = {
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  sessionToken: 'AWS_SESSION_TOKEN',
} as const;

/**
 * The variables the file carries for `role`: that role's keys under the AWS
 * SDK's names (restore_command says --repo, so the default chain reads them)
 * and under the runbook's names (an archive_command that says --runbook reads
 * those); no other role's keys; and every other secret the runbook names
 * (postmasterSecretEnvNames: encryption keys) as the worker has it.
 */
export function postmasterSecrets(runbook: Runbook, role: StorageRole): Record<string, string> {
  const env: Record<string, string> = {};
  // Every repository (`repositories:`), or the one.
  const repos: Array<Runbook['repository']> = (runbook as { repositories?: Array<Runbook['repository']> })
    .repositories ?? [runbook.repository];
  const first = resolveIdentity(role, runbook.repository.credentials, runbook.repository.runbookField);
  if (first.kind === 'static') {
    env[AWS_KEY_NAMES.accessKeyId] = first.credentials.accessKeyId;
    env[AWS_KEY_NAMES.secretAccessKey] = first.credentials.secretAccessKey;
    if (first.credentials.sessionToken) env[AWS_KEY_NAMES.sessionToken] = first.credentials.sessionToken;
  } else if (first.kind === 'profile') {
    env.AWS_PROFILE = first.profile;
  } else {
    for (const name of Object.values(AWS_KEY_NAMES)) {
      const v = process.env[name];
      if (v) env[name] = v;
    }
  }
  for (const repo of repos) {
    const c = repo.credentials?.[role];
    if (!c) continue;
    resolveIdentity(role, repo.credentials, repo.runbookField); // refuses a named variable that is not set
    for (const name of [c.accessKeyIdEnv, c.secretAccessKeyEnv, c.sessionTokenEnv]) {
      if (name && process.env[name]) env[name] = process.env[name]!;
    }
  }
  const roleNames = new Set(repos.flatMap((r) => credentialEnvNames(r.credentials)));
  const awsNames = new Set<string>(Object.values(AWS_KEY_NAMES));
  for (const name of postmasterSecretEnvNames(runbook)) {
    if (roleNames.has(name) || awsNames.has(name) || name in env) continue;
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

/**
 * Each repository of the runbook with its own settings for `role` (the
 * file's `repositories`, src/repository/credentials-file.ts): restore_command
 * and the prefetcher open a --fallback-repo with these, so a second store
 * with another endpoint, storage identity or key list is read as the worker
 * reads it. Variable names only; the values are in `env`. A repository that
 * names no identity for `role` uses the default chain, which in the worker
 * is the worker's AWS_* keys; in the file those names hold the first
 * repository's identity, so the worker's keys are carried for it under
 * names of its own (LIFEBOAT_REPO<n>_AWS_*), added to `env`.
 */
export function fileRepositories(
  runbook: Runbook,
  role: StorageRole,
  env: Record<string, string>,
): FileRepositorySettings[] {
  const repos: Array<Runbook['repository'] & { name?: string }> = (
    runbook as { repositories?: Array<Runbook['repository']> }
  ).repositories ?? [runbook.repository];
  return repos.map((entry, i) => {
    const options = repositoryOptions(entry);
    delete options.runbookField; // the file's format stays as it was: url, name and what opens the store
    // Only the identity this file is for: the copy has no business knowing the others' names.
    const own = entry.credentials?.[role];
    if (own) options.credentials = { [role]: own };
    else delete options.credentials;
    const worker = {
      accessKeyId: process.env[AWS_KEY_NAMES.accessKeyId],
      secretAccessKey: process.env[AWS_KEY_NAMES.secretAccessKey],
      sessionToken: process.env[AWS_KEY_NAMES.sessionToken],
    };
    if (
      i > 0 &&
      !entry.credentials?.[role] &&
      worker.accessKeyId &&
      worker.secretAccessKey &&
      env[AWS_KEY_NAMES.accessKeyId] !== worker.accessKeyId
    ) {
      const prefix = `LIFEBOAT_REPO${i + 1}_`;
      const names: RoleCredentials = {
        accessKeyIdEnv: `${prefix}${AWS_KEY_NAMES.accessKeyId}`,
        secretAccessKeyEnv: `${prefix}${AWS_KEY_NAMES.secretAccessKey}`,
      };
      env[names.accessKeyIdEnv!] = worker.accessKeyId;
      env[names.secretAccessKeyEnv!] = worker.secretAccessKey;
      if (worker.sessionToken)
        env[(names.sessionTokenEnv = `${prefix}${AWS_KEY_NAMES.sessionToken}`)] = worker.sessionToken;
      options.credentials = { ...options.credentials, [role]: names };
    }
    return { name: entry.name ?? `repo${i + 1}`, url: entry.url, options };
  });
}

/** Writes (atomically) the copy's credentials file for `role`; returns its path. */
export async function writeCredentialsFile(runbook: Runbook, pg: PgHost, role: StorageRole): Promise<string> {
  const file = credentialsFilePath(pg.dataDir);
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // An existing directory keeps its mode under mkdir: make it ours and private.
  await chmod(dir, 0o700);
  await chownToUser(dir, pg.osUser);
  const env = postmasterSecrets(runbook, role);
  const content: CredentialsFile = {
    lifeboat: 'credentials',
    role,
    env,
    repositories: fileRepositories(runbook, role, env),
  };
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(content)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await chownToUser(tmp, pg.osUser);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}

/** Removes a copy's credentials file and its directory, when there. */
export async function removeCredentialsFile(dataDir: string): Promise<void> {
  await rm(path.dirname(credentialsFilePath(dataDir)), { recursive: true, force: true });
}

/**
 * Writes the credentials file for `role` and returns the environment of the
 * postmaster (and of the prefetcher beside it): postmasterEnv, which holds no
 * secret, plus the path of the file.
 */
export async function postmasterEnvWithCredentials(
  runbook: Runbook,
  pg: PgHost,
  role: StorageRole = 'restore',
): Promise<Record<string, string>> {
  const file = await writeCredentialsFile(runbook, pg, role);
  return postmasterEnv(runbook, file);
}
