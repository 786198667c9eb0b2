// The s3:// repository: any S3-compatible store (AWS, MinIO, Ceph...), one
// object per key under s3://bucket/prefix/, with the sha256 of the original
// content as object metadata (x-amz-meta-sha256).
//
// Create-only writes use a conditional PUT (If-None-Match: *), so two
// writers racing for one key cannot overwrite each other: the store decides.
// Credentials come from the AWS SDK's default chain (environment, profile,
// instance role), never from a runbook; they never appear in a message.
//
// Beside this file: s3-client.ts (the URL, endpoint, identity and client),
// s3-errors.ts (SDK failures as operators' messages) and s3-versions.ts
// (versioned buckets and S3 Object Lock).
import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LifeboatError } from '../errors';
import { retentionFor, serverSideOf, serverSideParams } from './object-lock';
import { s3Target, type S3Target } from './s3-client';
import { isNotFound, s3Error, status } from './s3-errors';
import { deleteObjects, deletesByVersion, hiddenByDeleteMarkers, putRetention, readBucketLock } from './s3-versions';
import type {
  AppendOptions,
  BucketObjectLock,
  HiddenObject,
  ObjectInfo,
  ObjectLockRetention,
  PutOptions,
  PutResult,
  Repository,
  RepositoryEnvOptions,
} from './types';
import { KEY_ID_METADATA } from './types';

const APPEND_ATTEMPTS = 10;

function sha256Metadata(sha256: string | undefined): Record<string, string> {
  return sha256 ? { sha256 } : {};
}

export class S3Repository implements Repository {
  readonly url: string;
  readonly bucket: string;
  /** '' or 'some/prefix/' */
  readonly prefix: string;
  private readonly client: S3Client;
  /** Set once HeadBucket succeeded: a 404 from HEAD then means the key is absent. */
  private bucketSeen = false;
  private bucketLock?: Promise<BucketObjectLock>;

  /** Bucket, prefix, endpoint, identity, runbook settings and the client (src/repository/s3-client.ts). */
  private constructor(private readonly target: S3Target) {
    this.url = target.url;
    this.bucket = target.bucket;
    this.prefix = target.prefix;
    this.client = target.client;
  }

  static fromUrl(url: string, opts: RepositoryEnvOptions = {}): S3Repository {
    return new S3Repository(s3Target(url, opts));
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<PutResult> {
    const params: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: this.prefix + key,
      Metadata: {
        ...opts.metadata,
        sha256: opts.sha256,
        ...(opts.restorePoints !== undefined ? { 'restore-points': String(opts.restorePoints) } : {}),
      },
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
      ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
      ...this.lockAndEncryption(key),
    };
    try {
      if (Buffer.isBuffer(body)) {
        await this.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }));
        opts.onProgress?.(body.length);
      } else {
        if (opts.ifAbsent) {
          // Do not stream gigabytes only to be refused at the end.
          const existing = await this.head(key);
          if (existing) return { written: false, existing };
        }
        // lib-storage is loaded only for streams (base backups), never by archive-push.
        const { Upload } = await import('@aws-sdk/lib-storage');
        const upload = new Upload({
          client: this.client,
          params: { ...params, Body: body },
          queueSize: 4,
          partSize: 16 * 1024 * 1024,
        });
        if (opts.onProgress) upload.on('httpUploadProgress', (p) => opts.onProgress?.(p.loaded ?? 0));
        await upload.done();
      }
      return { written: true };
    } catch (err) {
      // 412: the object exists. 409: a concurrent conditional write to the
      // same key is in flight; the one that wins is the existing object.
      if (opts.ifAbsent && (status(err) === 412 || status(err) === 409)) {
        const existing = await this.waitForObject(key);
        if (existing) return { written: false, existing };
      }
      throw this.error('PUT', key, err);
    }
  }

  async get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      const body = Buffer.from(
        await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      return { body, info: this.info(key, body.length, res) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.error('GET', key, err);
    }
  }

  async getStream(key: string): Promise<{ stream: Readable; info: ObjectInfo } | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { stream: res.Body as Readable, info: this.info(key, res.ContentLength ?? 0, res) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.error('GET', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return this.info(key, res.ContentLength ?? 0, res);
    } catch (err) {
      if (!isNotFound(err)) throw this.error('HEAD', key, err);
    }
    // A HEAD 404 has no body to tell a missing key from a missing bucket, and
    // only the first is an answer.
    await this.checkBucket();
    return undefined;
  }

  private async checkBucket(): Promise<void> {
    if (this.bucketSeen) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketSeen = true;
    } catch (err) {
      if (status(err) === 404)
        throw this.error('HEAD', '/', Object.assign(new Error('the bucket does not exist'), { name: 'NoSuchBucket' }));
      throw this.error('HEAD', '/', err);
    }
  }

  /** Listings carry no user metadata: `sha256` is absent here; `head` has it. */
  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }),
        );
        for (const o of res.Contents ?? []) {
          if (!o.Key) continue;
          out.push({
            key: o.Key.slice(this.prefix.length),
            size: o.Size ?? 0,
            ...(o.LastModified ? { lastModified: o.LastModified } : {}),
          });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.error('LIST', prefix || '/', err);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Deletes by version in a versioned bucket, refusing a batch with a locked object (src/repository/s3-versions.ts). */
  async delete(keys: string[]): Promise<void> {
    const versioned = await deletesByVersion(() => this.bucketObjectLock());
    await deleteObjects(this.target, keys, versioned, (k) => this.head(k));
  }

  /**
   * S3 has no append: read, add the line, write back on the condition that
   * nobody wrote in between (If-Match on the ETag, If-None-Match when new),
   * and start over when someone did.
   */
  async append(key: string, line: string, opts: AppendOptions = {}): Promise<void> {
    const text = line.endsWith('\n') ? line : `${line}\n`;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      let current: Buffer = Buffer.alloc(0);
      let etag: string | undefined;
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
        current = Buffer.from(
          await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        etag = res.ETag;
      } catch (err) {
        if (!isNotFound(err)) throw this.error('GET', key, err);
      }
      const body = Buffer.concat([current, Buffer.from(text)]);
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.prefix + key,
            Body: body,
            Metadata: sha256Metadata(
              opts.sha256Of ? opts.sha256Of(body) : createHash('sha256').update(body).digest('hex'),
            ),
            ...(etag ? { IfMatch: etag } : { IfNoneMatch: '*' }),
            ...this.lockAndEncryption(key),
          }),
        );
        return;
      } catch (err) {
        if (status(err) !== 412 && status(err) !== 409) throw this.error('PUT', key, err);
        await sleep(20 * (attempt + 1));
      }
    }
    throw new LifeboatError(
      'REPOSITORY_UNREACHABLE',
      `${this.url}: could not append to ${key}: ${APPEND_ATTEMPTS} concurrent writers in a row`,
      {
        hints: ['another process keeps rewriting this object; retry later'],
      },
    );
  }

  /** Closes idle sockets so that a short-lived CLI process can exit at once. */
  destroy(): void {
    this.client.destroy();
  }

  private info(key: string, size: number, res: ObjectHeaders): ObjectInfo {
    const sha256 = res.Metadata?.sha256;
    const count = res.Metadata?.['restore-points'];
    const keyId = res.Metadata?.[KEY_ID_METADATA];
    const mode =
      res.ObjectLockMode === 'GOVERNANCE'
        ? 'governance'
        : res.ObjectLockMode === 'COMPLIANCE'
          ? 'compliance'
          : undefined;
    const serverSide = serverSideOf(res.ServerSideEncryption, res.SSEKMSKeyId);
    return {
      key,
      size,
      ...(sha256 ? { sha256 } : {}),
      ...(count !== undefined && /^\d+$/.test(count) ? { restorePoints: Number(count) } : {}),
      ...(res.LastModified ? { lastModified: res.LastModified } : {}),
      ...(res.VersionId && res.VersionId !== 'null' ? { versionId: res.VersionId } : {}),
      ...(mode && res.ObjectLockRetainUntilDate
        ? { lock: { mode, retainUntil: new Date(res.ObjectLockRetainUntilDate) } }
        : {}),
      ...(res.ObjectLockLegalHoldStatus === 'ON' ? { legalHold: true } : {}),
      ...(serverSide ? { serverSide } : {}),
      ...(keyId ? { keyId } : {}),
    };
  }

  /** PUT parameters from the runbook: server-side encryption always, Object Lock for base backup and WAL keys. */
  private lockAndEncryption(key: string): Partial<PutObjectCommandInput> {
    const retention = retentionFor(this.target.writeSettings.objectLock, key, new Date());
    return {
      ...serverSideParams(this.target.writeSettings.serverSide),
      ...(retention
        ? {
            ObjectLockMode: retention.mode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE',
            ObjectLockRetainUntilDate: retention.retainUntil,
          }
        : {}),
    };
  }

  /**
   * The bucket's Object Lock configuration and versioning, read once per
   * process. Needs s3:GetBucketObjectLockConfiguration and
   * s3:GetBucketVersioning; a store that refuses either fails this.
   */
  bucketObjectLock(): Promise<BucketObjectLock> {
    this.bucketLock ??= readBucketLock(this.target);
    const p = this.bucketLock;
    p.catch(() => {
      if (this.bucketLock === p) this.bucketLock = undefined;
    });
    return p;
  }

  hiddenByDeleteMarkers(prefix: string): Promise<HiddenObject[]> {
    return hiddenByDeleteMarkers(this.target, prefix);
  }

  putRetention(key: string, retention: ObjectLockRetention, versionId?: string): Promise<void> {
    return putRetention(this.target, key, retention, versionId);
  }

  /** After a refused conditional write, the winner may take a moment to become visible. */
  private async waitForObject(key: string): Promise<ObjectInfo | undefined> {
    for (let i = 0; i < 20; i++) {
      const existing = await this.head(key);
      if (existing) return existing;
      await sleep(100);
    }
    return undefined;
  }

  /** Maps an SDK failure to an operator's message (src/repository/s3-errors.ts); never carries credentials. */
  private error(op: string, key: string, err: unknown): LifeboatError {
    return s3Error(this.target, op, key, err);
  }
}

/** What GET and HEAD answers carry that ObjectInfo reports. */
interface ObjectHeaders {
  Metadata?: Record<string, string> | undefined;
  LastModified?: Date | undefined;
  VersionId?: string | undefined;
  ObjectLockMode?: string | undefined;
  ObjectLockRetainUntilDate?: Date | string | undefined;
  ObjectLockLegalHoldStatus?: string | undefined;
  ServerSideEncryption?: string | undefined;
  SSEKMSKeyId?: string | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
