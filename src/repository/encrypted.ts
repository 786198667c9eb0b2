// Client-side encryption of a repository: a decorator around file:// or
// s3:// that seals every object Lifeboat writes (WAL, base backup parts,
// manifests, backup.json, evidence, audit lines) with AES-256-GCM before it
// leaves this process, and opens and authenticates it when read. The format
// is in ./encryption-format.ts, the keys in ./keys.ts.
//
// What stays in the clear: object names, sizes, times, and the metadata the
// store keeps beside each object: the sha256 of the PLAINTEXT (the sidecar
// or x-amz-meta-sha256). Keeping it over the plaintext is what lets every
// reader verify what it was given after decryption, as before, and what
// lets the spool of archive-get, which holds plaintext, stay checkable.
//
// Sizes are shown as they were before encryption (ObjectInfo.size is the
// compressed size, as callers wrote it): base-backup checks the size it
// uploaded, restore counts progress in it. The stored size is larger by 74
// bytes and 16 per MiB; the plaintext size follows from it (plaintextSize).
//
// openLocal is never offered: restore's tar would read the ciphertext
// through the descriptor. Restores from an encrypted file:// repository
// stream through this process instead.
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import {
  openBuffer,
  openStream,
  plainBytesOf,
  plaintextSize,
  sealBuffer,
  sealLine,
  sealStream,
} from './encryption-format';
import { KeyRing, type EncryptionSettings } from './keys';
import { KEY_ID_METADATA, type ObjectInfo, type PutOptions, type PutResult, type Repository } from './types';

const STORE_LEVEL = ['bucketObjectLock', 'hiddenByDeleteMarkers', 'putRetention'];

export class EncryptedRepository implements Repository {
  readonly url: string;
  readonly ring: KeyRing;

  constructor(
    private readonly inner: Repository,
    settings: EncryptionSettings,
  ) {
    this.url = inner.url;
    this.ring = new KeyRing(settings);
    // Optional calls of the store that concern the bucket, not an object's
    // content (Object Lock queries, a version's retention), pass through when the store has them.
    // Never openLocal: it would hand out the ciphertext.
    for (const name of STORE_LEVEL) {
      const f = (inner as unknown as Record<string, unknown>)[name];
      if (typeof f === 'function')
        (this as unknown as Record<string, unknown>)[name] = (f as (...a: unknown[]) => unknown).bind(inner);
    }
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<PutResult> {
    const w = { url: this.url, key };
    const sealed = Buffer.isBuffer(body) ? sealBuffer(body, this.ring, w) : sealStream(body, this.ring, w);
    const onProgress = opts.onProgress;
    const res = await this.inner.put(key, sealed, {
      ...opts,
      // Which key sealed it, beside the object too (s3://): a HEAD answers without a download.
      metadata: { ...opts.metadata, [KEY_ID_METADATA]: this.ring.currentId },
      ...(onProgress ? { onProgress: (n: number) => onProgress(plainBytesOf(n)) } : {}),
    });
    return res.written ? res : { written: false, existing: this.shown(res.existing) };
  }

  async get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | undefined> {
    const got = await this.inner.get(key);
    if (!got) return undefined;
    const body = openBuffer(got.body, this.ring, { url: this.url, key });
    return { body, info: { ...got.info, size: body.length } };
  }

  async getStream(key: string): Promise<{ stream: Readable; info: ObjectInfo } | undefined> {
    const got = await this.inner.getStream(key);
    if (!got) return undefined;
    const stream = await openStream(got.stream, this.ring, { url: this.url, key });
    return { stream, info: this.shown(got.info) };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.inner.head(key);
    return info && this.shown(info);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    return (await this.inner.list(prefix)).map((i) => this.shown(i));
  }

  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }

  append(key: string, line: string): Promise<void> {
    const w = { url: this.url, key };
    // The stored sha256 is the plaintext log's, as for every other object (the log is small: opened whole).
    // A line this process cannot open (its key no longer listed) costs the log its sha256, never the append.
    const sha256Of = (stored: Buffer) => {
      try {
        return createHash('sha256')
          .update(openBuffer(stored, this.ring, w))
          .digest('hex');
      } catch {
        return undefined;
      }
    };
    return this.inner.append(key, sealLine(line, this.ring, w), { sha256Of });
  }

  /**
   * Checks before anything is stored that the current key can be read, so
   * archive-push and backups fail at once, naming the variable, instead of
   * after packing gigabytes.
   */
  checkWriteKey(): void {
    this.ring.key(this.ring.currentId, `new objects in ${this.url}`);
  }

  /** Closes the S3 client's sockets, so a short-lived CLI process can exit at once. */
  destroy(): void {
    (this.inner as { destroy?: () => void }).destroy?.();
  }

  private shown(info: ObjectInfo): ObjectInfo {
    const size = plaintextSize(info.size);
    return size === undefined ? info : { ...info, size };
  }
}

/** The repository as given, sealed when the runbook (or the command line) configures encryption. */
export function withEncryption(repo: Repository, settings: EncryptionSettings | undefined): Repository {
  return settings ? new EncryptedRepository(repo, settings) : repo;
}
