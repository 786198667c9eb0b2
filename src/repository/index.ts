// Opens a repository by URL: file:///path (the embedded default) or
// s3://bucket/prefix (any S3-compatible store). The S3 client is loaded only
// for s3:// URLs: it costs more start-up time than archive-push may spend.
import { LifeboatError } from '../errors';
import { loadCredentialsFile } from './credentials-file';
import type { StorageRole } from './roles';
import type { Repository, RepositoryEnvOptions } from './types';

// How a repository is opened: defined beside Repository (types.ts), so that
// s3.ts needs nothing from this file, which loads it.
export type { RepositoryEnvOptions } from './types';

/**
 * A runbook's repository entry (`repository:` or one of `repositories:`) as
 * openRepository's options, acting as `role`: every per-entry setting travels
 * with its entry, so each repository of a list is opened with its own
 * endpoint, keys and credentials. Settings added to the schema's Repository
 * and to RepositoryEnvOptions under the same name pass through unchanged.
 */
export function repositoryOptions<E extends RepositoryEnvOptions & { url: string; name?: string | undefined }>(
  entry: E,
  role?: StorageRole,
): RepositoryEnvOptions {
  const { url: _url, name: _name, ...opts } = entry;
  return role ? { ...opts, role } : opts;
}

export async function openRepository(url: string, opts: RepositoryEnvOptions = {}): Promise<Repository> {
  // A process PostgreSQL started (archive-get, archive-push) finds its secrets
  // in the file $LIFEBOAT_CREDENTIALS_FILE names, not in its environment.
  loadCredentialsFile();
  if (url.startsWith('file://')) {
    // The runbook schema refuses these too; this covers --repo and callers that build options.
    if (opts.serverSide || opts.objectLock) {
      throw new LifeboatError(
        'REPOSITORY_INVALID',
        `${url}: ${opts.objectLock ? 'objectLock' : 'serverSide'} is an S3 setting, and this is a file:// repository`,
        {
          hints: [
            "remove it from the runbook's repository, or use an s3:// repository (bucket created with Object Lock for objectLock)",
          ],
        },
      );
    }
    const { FileRepository } = await import('./file');
    return sealed(new FileRepository(url), opts);
  }
  if (url.startsWith('s3://')) {
    const { S3Repository } = await import('./s3');
    return sealed(S3Repository.fromUrl(url, opts), opts);
  }
  throw new LifeboatError('REPOSITORY_INVALID', `unsupported repository URL ${JSON.stringify(url)}`, {
    hints: ['use file:///absolute/path or s3://bucket/prefix'],
  });
}

/** The store behind client-side encryption (./encrypted.ts) when the options configure it; loaded only then. */
async function sealed(repo: Repository, opts: RepositoryEnvOptions): Promise<Repository> {
  if (!opts.encryption) return repo;
  const { EncryptedRepository } = await import('./encrypted');
  return new EncryptedRepository(repo, opts.encryption);
}
