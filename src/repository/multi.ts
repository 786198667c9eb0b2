// Several repositories for one cluster (runbook `repositories:`): which ones a
// command uses, in which order, and opening each with its own settings.
//
// The first repository is the primary one: archive-push must reach it under
// either policy (runbook `repositoryPolicy`), backups are copied from it, and
// recoveries and drills read it first, falling back to the next in runbook
// order when it is unreachable or damaged (src/restore/fallback.ts).
import { errorMessage, LifeboatError, withContext } from '../errors';
import type { RepositoryEntry, Runbook } from '../runbook/schema';
import { openRepository, repositoryOptions } from './index';
type StorageRole = NonNullable<Parameters<typeof repositoryOptions>[1]>;
import type { Repository } from './types';
import { repositorySettingsFromFile } from './credentials-file';
import type { EncryptionSettings } from './keys';

export interface OpenedRepository {
  /** The entry's name (repo1, repo2... when the runbook gives none). */
  name: string;
  /** Position in the runbook's list, from 0. */
  index: number;
  url: string;
  repo: Repository;
}

/**
 * The runbook's repositories in order, or only the one `choice` names: its
 * name, or its position counted from 1 (`--repo-index 2`).
 */
export function chooseRepositories(
  runbook: Pick<Runbook, 'name' | 'repositories'>,
  choice?: string,
): RepositoryEntry[] {
  const list = runbook.repositories;
  if (choice === undefined || choice === '') return list;
  const byName = list.find((r) => r.name === choice);
  if (byName) return [byName];
  const n = /^\d+$/.test(choice) ? Number(choice) : NaN;
  const byIndex = Number.isInteger(n) && n >= 1 ? list[n - 1] : undefined;
  if (byIndex) return [byIndex];
  throw new LifeboatError(
    'INPUT_INVALID',
    `runbook ${runbook.name} has no repository ${JSON.stringify(choice)}: it has ${list.map((r, i) => `${i + 1} ${r.name} (${r.url})`).join(', ')}`,
    { hints: ['name one by its name (repositories[].name) or by its position from 1, e.g. --repo-index 2'] },
  );
}

/** Opens one entry with its own settings. */
export async function openEntry(entry: RepositoryEntry, index: number, role?: StorageRole): Promise<OpenedRepository> {
  const repo = await openRepository(entry.url, repositoryOptions(entry, role));
  return { name: entry.name, index, url: entry.url, repo };
}

/** Opens every repository of the runbook, in order. */
export async function openRepositories(
  runbook: Pick<Runbook, 'repositories'>,
  role?: StorageRole,
): Promise<OpenedRepository[]> {
  return Promise.all(runbook.repositories.map((entry, i) => openEntry(entry, i, role)));
}

/** Releases S3 clients (their sockets keep a short-lived process alive). */
export function closeRepositories(list: ReadonlyArray<{ repo: Repository }>): void {
  for (const r of list) (r.repo as { destroy?: () => void }).destroy?.();
}

/** "offsite (s3://bucket/orders)": how messages name a repository of a list. */
export function repositoryLabel(r: { name: string; url: string }): string {
  return `${r.name} (${r.url})`;
}

/**
 * Runs `copy` against each repository after the first, in order (a base
 * backup's files, streamed again from where the first upload read them).
 * repositoryPolicy all: a repository that fails fails the whole; primary: the
 * failure is reported and that repository's newest backup stays older, as
 * `lifeboat check` then shows.
 */
export async function copyToOtherRepositories(
  runbook: Pick<Runbook, 'repositories' | 'repositoryPolicy'>,
  what: string,
  copy: (repo: Repository, entry: OpenedRepository) => Promise<void>,
): Promise<Array<{ name: string; url: string; error?: string }>> {
  const out: Array<{ name: string; url: string; error?: string }> = [];
  for (const [i, entry] of runbook.repositories.entries()) {
    if (i === 0) continue;
    const opened = await openEntry(entry, i, 'backup');
    try {
      await copy(opened.repo, opened);
      out.push({ name: entry.name, url: entry.url });
    } catch (err) {
      if (runbook.repositoryPolicy === 'all')
        throw withContext(`while copying ${what} into repository ${repositoryLabel(entry)}`, err);
      const error = errorMessage(err).split('\n', 1)[0] ?? '';
      process.stderr.write(
        `WARNING: ${what} is not in repository ${repositoryLabel(entry)}: ${error} (repositoryPolicy primary: the first repository has it)\n`,
      );
      out.push({ name: entry.name, url: entry.url, error });
    } finally {
      closeRepositories([opened]);
    }
  }
  return out;
}

/**
 * restore_command's --fallback-repo arguments: the runbook's repositories
 * after the first, in order, each as URL[#endpointEnv=VAR][#regionEnv=VAR]
 * (variable names only; '#' is in no S3 bucket name or file:// path we write).
 */
export function fallbackRepoArgs(runbook: Pick<Runbook, 'repositories'>): string[] {
  return runbook.repositories
    .slice(1)
    .flatMap((r) => [
      '--fallback-repo',
      `${r.url}${r.endpointEnv ? `#endpointEnv=${r.endpointEnv}` : ''}${r.regionEnv ? `#regionEnv=${r.regionEnv}` : ''}`,
    ]);
}

/** A --fallback-repo value back into its URL and variable names. */
export function parseFallbackRepo(spec: string): { url: string; endpointEnv?: string; regionEnv?: string } {
  const [url = '', ...rest] = spec.split('#');
  const out: { url: string; endpointEnv?: string; regionEnv?: string } = { url };
  for (const part of rest) {
    const m = /^(endpointEnv|regionEnv)=([A-Za-z_][A-Za-z0-9_]*)$/.exec(part);
    if (!m)
      throw new LifeboatError(
        'INPUT_INVALID',
        `--fallback-repo ${JSON.stringify(spec)}: expected URL[#endpointEnv=VAR][#regionEnv=VAR]`,
      );
    out[m[1] as 'endpointEnv' | 'regionEnv'] = m[2]!;
  }
  return out;
}

/**
 * Opens a --fallback-repo of restore_command (or of the prefetcher) as the
 * restore identity, with that repository's own settings: the copy's
 * credentials file lists every repository of the runbook with its endpoint,
 * storage identity and encryption keys (src/restore/secret-file.ts), and the
 * entry for this URL is used. A file without that list (written by hand, or
 * before lists existed) leaves the old way: the variables the spec names and
 * the keys given on the command line (`encryption`), with the default chain.
 */
export async function openFallbackRepository(
  spec: string,
  encryption: EncryptionSettings | undefined,
): Promise<Repository> {
  const parsed = parseFallbackRepo(spec);
  const fromFile = repositorySettingsFromFile(parsed.url);
  if (fromFile) return openRepository(parsed.url, { ...fromFile.options, role: 'restore' });
  const { endpointEnv, regionEnv } = parsed;
  return openRepository(parsed.url, {
    role: 'restore',
    ...(endpointEnv ? { endpointEnv } : {}),
    ...(regionEnv ? { regionEnv } : {}),
    ...(encryption ? { encryption } : {}),
  });
}

/**
 * The runbook as if it named only the repository `choice` picks (its name, or
 * its position from 1): what `lifeboat recover --repo-index` and `drill
 * --repo-index` force, for every activity of the run. No choice: unchanged.
 */
export function runbookWithRepository<R extends Pick<Runbook, 'name' | 'repositories' | 'repository'>>(
  runbook: R,
  choice?: string,
): R {
  if (choice === undefined || choice === '') return runbook;
  const [only] = chooseRepositories(runbook, choice);
  return { ...runbook, repository: only!, repositories: [only!] };
}
