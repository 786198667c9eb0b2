// The credentials file: how secrets reach `lifeboat archive-get`,
// `archive-push` and the WAL prefetcher when PostgreSQL starts them.
//
// A postmaster keeps its environment for its whole life, passes it to every
// restore_command and archive_command, and at log_min_messages = debug3 and
// below prints all of it into the server log ("PostmasterMain: initial
// environment dump"). So the postmaster Lifeboat starts gets no secret in its
// environment, only the PATH of this file (LIFEBOAT_CREDENTIALS_FILE), and
// the commands it runs read the secrets from here (src/restore/secret-file.ts
// writes it). The file is JSON, owned by the user that reads it, mode 0600:
//   { "lifeboat": "credentials", "role": "restore", "env": { "AWS_ACCESS_KEY_ID": "...", ... },
//     "repositories": [{ "name": "offsite", "url": "s3://...", "options": { "endpointEnv": "...", ... } }] }
// `env` holds environment variables to set in the reading process, so that
// everything downstream (the AWS SDK's default chain, a runbook's
// repository.credentials.<role> variables, encryption key variables) finds
// them exactly where the worker found them. `repositories` (runbook
// `repositories:`) holds each repository's own settings, variable names only
// (their values are in `env`): restore_command's --fallback-repo and the
// prefetcher open each repository it names with its own endpoint, storage
// identity and encryption keys (repositorySettingsFromFile), not the first's.
//
// An operator may use the same file for the primary's archive_command:
// `lifeboat archive-push %p --runbook orders --credentials-file /var/lib/postgresql/.lifeboat/credentials.json`.
import { readFileSync, statSync } from 'node:fs';
import { LifeboatError } from '../errors';
import type { RepositoryEnvOptions } from './index';

/** The variable naming the file in the postmaster's environment: a path, not a secret. */
export const CREDENTIALS_FILE_ENV = 'LIFEBOAT_CREDENTIALS_FILE';

export interface CredentialsFile {
  lifeboat: 'credentials';
  /** Which storage identity the file carries (archive, restore...), for messages. */
  role?: string;
  env: Record<string, string>;
  /** The runbook's repositories, in order, each with its own settings (names of variables, never values). */
  repositories?: FileRepositorySettings[];
}

/** One repository's settings in a credentials file: openRepository's options for the file's role. */
export interface FileRepositorySettings {
  name: string;
  url: string;
  options: RepositoryEnvOptions;
}

const loaded = new Map<string, CredentialsFile>();

/**
 * Sets the file's variables in this process, once per file: from
 * --credentials-file, else from $LIFEBOAT_CREDENTIALS_FILE. Its values win
 * over the environment: the file names the identity the caller chose. Also
 * sets LIFEBOAT_CREDENTIALS_FILE, so that processes started from here (the
 * prefetcher, the read-ahead pusher) read the same file.
 */
export function loadCredentialsFile(explicit?: string): string | undefined {
  const file = explicit ?? process.env[CREDENTIALS_FILE_ENV];
  if (!file) return undefined;
  if (loaded.has(file)) return file;
  const parsed = readCredentialsFile(file);
  for (const [k, v] of Object.entries(parsed.env)) process.env[k] = v;
  process.env[CREDENTIALS_FILE_ENV] = file;
  loaded.set(file, parsed);
  return file;
}

/**
 * The settings the loaded credentials file gives the repository at `url`
 * (its `repositories` list); undefined without a file, or when the file
 * does not list it (a file written by hand, or before lists existed).
 */
export function repositorySettingsFromFile(url: string): FileRepositorySettings | undefined {
  const file = loadCredentialsFile();
  return file ? loaded.get(file)?.repositories?.find((r) => r.url === url) : undefined;
}

/** Reads and checks the file; refuses one that others may read or write. Never quotes its content. */
export function readCredentialsFile(file: string): CredentialsFile {
  const where = `the credentials file ${file} (--credentials-file or $${CREDENTIALS_FILE_ENV})`;
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `${where} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        hints: [
          'Lifeboat writes it for the copies it starts and removes it when they are torn down; a copy started by hand needs its own',
          "for the primary's archive_command, create it (mode 0600, owned by the PostgreSQL OS user) or give credentials another way (AWS_PROFILE, an instance role)",
        ],
        cause: err,
      },
    );
  }
  const uid = process.getuid?.();
  // Like ssh with a private key: a secret others could read is a secret already leaked.
  if (!st.isFile() || (st.mode & 0o077) !== 0 || (uid !== undefined && uid !== 0 && st.uid !== uid)) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `${where} is refused: it must be a regular file owned by the user reading it (uid ${uid ?? '?'}) with mode 0600; it is ${st.isFile() ? 'a file' : 'not a regular file'} owned by uid ${st.uid}, mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}`,
      { hints: [`chmod 600 ${file} and chown it to the PostgreSQL OS user`] },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // The parser's message may quote the content: never repeat it.
    throw new LifeboatError('SECRET_MISSING', `${where} is not valid JSON`, {
      hints: [
        'expected {"lifeboat": "credentials", "env": {"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}}',
      ],
    });
  }
  const p = parsed as Partial<CredentialsFile> | null;
  const env = p?.env;
  if (
    p?.lifeboat !== 'credentials' ||
    typeof env !== 'object' ||
    env === null ||
    Object.values(env).some((v) => typeof v !== 'string')
  ) {
    throw new LifeboatError('SECRET_MISSING', `${where} is not a Lifeboat credentials file`, {
      hints: ['expected {"lifeboat": "credentials", "env": {"NAME": "value", ...}} with string values'],
    });
  }
  const repositories = p.repositories;
  if (
    repositories !== undefined &&
    (!Array.isArray(repositories) ||
      repositories.some(
        (r) =>
          typeof r?.url !== 'string' ||
          typeof r.name !== 'string' ||
          typeof r.options !== 'object' ||
          r.options === null,
      ))
  ) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `${where} has a "repositories" entry that is not {"name", "url", "options"}`,
      {
        hints: ['Lifeboat writes this list for the copies it starts; remove it from a file written by hand'],
      },
    );
  }
  return {
    lifeboat: 'credentials',
    ...(typeof p.role === 'string' ? { role: p.role } : {}),
    env,
    ...(repositories ? { repositories } : {}),
  };
}
