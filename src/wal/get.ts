// Restoring WAL files from the repository: what `lifeboat archive-get`
// (PostgreSQL's restore_command) does, and its background prefetcher through
// the spool (src/wal/spool.ts).
//
// Nothing is ever handed to PostgreSQL unverified: every file is checked
// against the sha256 recorded when it was archived, after decompression, and
// written under a temporary name before it appears at its final path.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, isLifeboatError } from '../errors';
import { keys } from '../repository/layout';
import { sealedKeyId } from '../repository/encryption-format';
import type { Repository } from '../repository/types';
import { decodeWal, sha256Hex } from './compress';

export interface Fetched {
  content: Buffer;
  sha256: string;
}

/** A WAL file's verified original content; undefined when the archive does not have it. */
export async function fetchWalFile(repo: Repository, cluster: string, walFile: string): Promise<Fetched | undefined> {
  const key = keys.wal(cluster, walFile);
  let obj;
  try {
    obj = await repo.get(key);
  } catch (err) {
    // An encrypted object that fails authentication is a damaged segment, as
    // one that fails its checksum: recovery stops there (replay-failure.ts).
    if (isLifeboatError(err) && err.code === 'ENCRYPTED_OBJECT_DAMAGED')
      throw corrupt(`${walFile}: ${err.what}`, walFile, key);
    throw err;
  }
  if (!obj) return undefined;
  const where = `${walFile} in ${repo.url} (cluster ${cluster}, object ${key})`;
  const sealedBy = sealedKeyId(obj.body);
  if (sealedBy !== undefined) throw notDecrypted(where, sealedBy, walFile, key);
  const expected = obj.info.sha256;
  if (!expected) {
    throw corrupt(`${where} has no recorded sha256, so it cannot be verified`, walFile, key);
  }
  let content: Buffer;
  try {
    content = await decodeWal(walFile, obj.body);
  } catch (err) {
    throw corrupt(
      `${where} cannot be decompressed (${(err as Error).message}); ${obj.body.length} bytes stored`,
      walFile,
      key,
    );
  }
  const actual = sha256Hex(content);
  if (actual !== expected) {
    throw corrupt(
      `${where} does not match its checksum: recorded sha256 ${expected}, content sha256 ${actual}`,
      walFile,
      key,
    );
  }
  return { content, sha256: actual };
}

/** An encrypted object read from a repository opened without encryption (no --encryption-key, no repository.encryption). */
function notDecrypted(where: string, keyId: string, walFile: string, object: string): LifeboatError {
  return new LifeboatError(
    'ENCRYPTION_KEY_MISMATCH',
    `${where} is encrypted (key id ${keyId}), and no encryption key is configured`,
    {
      hints: [
        `add --encryption-key ${keyId}=<VARIABLE holding the key> to restore_command (lifeboat archive-get ... --repo ...), or set repository.encryption in the runbook`,
        'nothing was written at %p',
      ],
      details: { walFile, object, keyId },
    },
  );
}

function corrupt(what: string, walFile: string, object: string): LifeboatError {
  return new LifeboatError('WAL_CHECKSUM_MISMATCH', what, {
    hints: [
      'the archived copy is damaged; recovery cannot continue past it with this archive',
      'if the primary still has this file in pg_wal, archive it again into a fresh repository or cluster name',
      'otherwise recover to a target before this segment, or from a newer base backup',
    ],
    details: { walFile, object },
  });
}

/**
 * fetchWalFile with retries for errors that may pass (network, store
 * restarting). A checksum mismatch is a fact about the data and is not
 * retried; neither is a clean "absent".
 */
export async function fetchWalFileWithRetry(
  repo: Repository,
  cluster: string,
  walFile: string,
  { attempts = 4, baseDelayMs = 500 }: { attempts?: number; baseDelayMs?: number } = {},
): Promise<Fetched | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchWalFile(repo, cluster, walFile);
    } catch (err) {
      const permanent =
        isLifeboatError(err) &&
        (err.code === 'WAL_CHECKSUM_MISMATCH' ||
          err.code === 'REPOSITORY_INVALID' ||
          err.code === 'ENCRYPTION_KEY_MISMATCH' ||
          err.code === 'SECRET_MISSING');
      if (permanent || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (attempt - 1)));
    }
  }
}

/** Writes a file that appears complete or not at all: temporary name beside it, fsync, rename. */
export async function writeFileAtomic(dest: string, content: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.lifeboat-tmp-${process.pid}`);
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
