// The s3:// repository: any S3-compatible store (AWS, MinIO, Ceph...), one
// object per key under s3://bucket/prefix/, with the sha256 of the original
// content as object metadata (x-amz-meta-sha256).
//
// Create-only writes use a conditional PUT (If-None-Match: *), so two
// writers racing for one key cannot overwrite each other: the store decides.
// Credentials come from the AWS SDK's default chain (environment, profile,
// instance role), never from a runbook; they never appear in a message.
import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LifeboatError } from '../errors';
import type { RepositoryEnvOptions } from './types';
import { permissionFor, resolveIdentity, type ResolvedIdentity } from './roles';
import { lockedUntil, mapLimit, retentionFor, serverSideOf, serverSideParams } from './object-lock';
import type {
  AppendOptions,
  BucketObjectLock,
  HiddenObject,
  ObjectInfo,
  ObjectLockRetention,
  PutOptions,
  PutResult,
  Repository,
} from './types';
import { KEY_ID_METADATA } from './types';

const ENDPOINT_ENVS = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT'];
/** Environment variables whose values must never reach a message. */
const SECRET_ENVS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID'];
const APPEND_ATTEMPTS = 10;

function sha256Metadata(sha256: string | undefined): Record<string, string> {
  return sha256 ? { sha256 } : {};
}

interface Endpoint {
  /** Where the endpoint came from, for hints: the variable's name, never its value's secrets. */
  source: string;
  url?: string;
}

export class S3Repository implements Repository {
  readonly url: string;
  private readonly client: S3Client;
  /** Set once HeadBucket succeeded: a 404 from HEAD then means the key is absent. */
  private bucketSeen = false;
  /** Runbook repository.serverSide / repository.objectLock: applied to every PUT (src/repository/object-lock.ts). */
  private writeSettings: Pick<RepositoryEnvOptions, 'serverSide' | 'objectLock'> = {};
  /** How errors name the runbook entry: `repository`, or `repositories[1]` in a list. */
  private runbookField = 'repository';
  private bucketLock?: Promise<BucketObjectLock>;

  private constructor(
    readonly bucket: string,
    /** '' or 'some/prefix/' */
    readonly prefix: string,
    private readonly endpoint: Endpoint,
    region: string,
    /** Whose credentials this client signs with (src/repository/roles.ts); named in messages, never its secrets. */
    private readonly identity: ResolvedIdentity = resolveIdentity(undefined, undefined),
  ) {
    this.url = `s3://${bucket}/${prefix}`.replace(/\/$/, '');
    this.client = new S3Client({
      region,
      forcePathStyle: true,
      ...(endpoint.url ? { endpoint: endpoint.url } : {}),
      // The role's own identity when the runbook names one; otherwise the
      // SDK's default chain, as before roles existed.
      ...(identity.kind === 'static'
        ? { credentials: identity.credentials }
        : identity.kind === 'profile'
          ? { profile: identity.profile }
          : {}),
      // A store that accepts the connection and then answers nothing (a
      // frozen process, a hung gateway) must fail the request, not hang it:
      // socketTimeout is 60 s without a byte either way, so a slow but moving
      // transfer (a large part, a long download) is never cut. requestTimeout
      // alone only logs a warning in this SDK (throwOnRequestTimeout is off),
      // and archive-push, archive-get and lifeboat check then waited forever
      // on a SIGSTOPped MinIO (test/faults/object-store.test.ts).
      requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 },
    });
  }

  static fromUrl(url: string, opts: RepositoryEnvOptions = {}): S3Repository {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,62})(?:\/(.*))?$/.exec(url);
    if (!m) {
      throw new LifeboatError(
        'REPOSITORY_INVALID',
        `not an s3:// repository URL: ${JSON.stringify(stripUserinfo(url))}`,
        {
          hints: ['use s3://bucket/prefix (bucket names are lower-case letters, digits, dots and dashes)'],
        },
      );
    }
    const bucket = m[1] as string;
    const rest = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
    const prefix = rest === '' ? '' : `${rest}/`;
    const endpointVars = [...(opts.endpointEnv ? [opts.endpointEnv] : []), ...ENDPOINT_ENVS];
    const endpointVar = endpointVars.find((v) => process.env[v]);
    const endpoint: Endpoint = endpointVar
      ? { source: endpointVar, url: process.env[endpointVar] }
      : { source: opts.endpointEnv ?? ENDPOINT_ENVS.join(', ') };
    const region = (opts.regionEnv ? process.env[opts.regionEnv] : undefined) ?? process.env.AWS_REGION ?? 'us-east-1';
    const repo = new S3Repository(
      bucket,
      prefix,
      endpoint,
      region,
      resolveIdentity(opts.role, opts.credentials, opts.runbookField),
    );
    repo.writeSettings = {
      ...(opts.serverSide ? { serverSide: opts.serverSide } : {}),
      ...(opts.objectLock ? { objectLock: opts.objectLock } : {}),
    };
    repo.runbookField = opts.runbookField ?? 'repository';
    return repo;
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

  /**
   * In a versioned bucket (every Object Lock bucket is) a DELETE without a
   * version id removes nothing: it places a delete marker that hides the
   * object while every version stays stored. So there each key is read first
   * (HEAD: its version id and lock) and that version is deleted; a batch
   * holding a locked object is refused whole, before anything of it goes.
   * Expiry filters locked objects out beforehand (src/catalog/locked.ts);
   * this is the backstop for a lock that appeared in between.
   */
  async delete(keys: string[]): Promise<void> {
    const versioned = await this.deletesByVersion();
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      let objects: { Key: string; VersionId?: string }[] = batch.map((k) => ({ Key: this.prefix + k }));
      if (versioned) {
        const heads = await mapLimit(batch, 16, (k) => this.head(k));
        const now = new Date();
        const locked = heads.flatMap((h) => {
          const l = h ? lockedUntil(h, now) : undefined;
          return h && l ? [{ key: h.key, ...l }] : [];
        });
        if (locked.length > 0) {
          const first = locked[0]!;
          throw new LifeboatError(
            'REPOSITORY_INVALID',
            `${this.url}: ${locked.length} of ${batch.length} objects to delete are under S3 Object Lock; first: ${first.key}, ` +
              `${first.until ? `locked until ${first.until.toISOString()}` : ''}${first.legalHold ? `${first.until ? ' and ' : ''}under a legal hold` : ''}; nothing of this batch was deleted`,
            {
              hints: [
                'a locked object cannot be deleted before its retain-until date (compliance mode: by nobody); wait, then run lifeboat expire again',
              ],
            },
          );
        }
        objects = heads.flatMap((h) =>
          h ? [{ Key: this.prefix + h.key, ...(h.versionId ? { VersionId: h.versionId } : {}) }] : [],
        );
        if (objects.length === 0) continue;
      }
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: objects, Quiet: true } }),
        );
      } catch (err) {
        throw this.error('DELETE', batch[0] ?? '', err);
      }
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        if (failed.every((f) => f.Code === 'AccessDenied')) {
          // The identity may not delete here: a policy question, not the store's health.
          const permission = versioned ? 's3:DeleteObjectVersion' : permissionFor('DELETE');
          throw new LifeboatError(
            'PRIVILEGE_MISSING',
            `${this.url}: ${failed.length} of ${objects.length} deletions refused (AccessDenied), first ${first?.Key ?? '?'}: ` +
              `${this.identity.describe} lacks ${permission} on s3://${this.bucket}/${this.prefix}` +
              (failed.length === objects.length ? '; nothing of this batch was deleted' : ''),
            {
              hints: [
                `grant ${permission} to that identity, or run expire with the identity whose policy has it (docs/iam/expire.json); archive and backup identities never delete, on purpose`,
              ],
            },
          );
        }
        throw new LifeboatError(
          'REPOSITORY_UNREACHABLE',
          `${this.url}: ${failed.length} of ${objects.length} deletions failed; first: ${first?.Key ?? '?'}: ${first?.Code ?? ''} ${first?.Message ?? ''}`.trim(),
          {
            hints: [
              versioned
                ? 'check that the credentials may delete object versions in this bucket (s3:DeleteObjectVersion) and read their retention (s3:GetObjectRetention, s3:GetObjectLegalHold)'
                : 'check that the credentials may delete objects in this bucket (s3:DeleteObject)',
            ],
          },
        );
      }
    }
  }

  /**
   * Whether deletes must name versions: yes unless the bucket is known to be
   * unversioned. A store that will not say (no s3:GetBucketVersioning) gets
   * the careful path: a HEAD per key, which in an unversioned bucket carries
   * no version id and so deletes as before.
   */
  private async deletesByVersion(): Promise<boolean> {
    try {
      return (await this.bucketObjectLock()).versioning !== 'off';
    } catch (err) {
      if (
        err instanceof LifeboatError &&
        (err.code === 'PRIVILEGE_MISSING' ||
          (err.code === 'REPOSITORY_UNREACHABLE' && /HTTP 403|AccessDenied/.test(err.message)))
      )
        return true;
      throw err;
    }
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
    const retention = retentionFor(this.writeSettings.objectLock, key, new Date());
    return {
      ...serverSideParams(this.writeSettings.serverSide),
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
    this.bucketLock ??= this.readBucketLock();
    const p = this.bucketLock;
    p.catch(() => {
      if (this.bucketLock === p) this.bucketLock = undefined;
    });
    return p;
  }

  async hiddenByDeleteMarkers(prefix: string): Promise<HiddenObject[]> {
    const out: HiddenObject[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectVersionsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            KeyMarker: keyMarker,
            VersionIdMarker: versionMarker,
          }),
        );
        for (const m of res.DeleteMarkers ?? []) {
          if (!m.IsLatest || !m.Key || !m.VersionId) continue;
          out.push({
            key: m.Key.slice(this.prefix.length),
            markerVersionId: m.VersionId,
            ...(m.LastModified ? { hiddenSince: m.LastModified } : {}),
          });
        }
        const more = res.IsTruncated === true;
        keyMarker = more ? res.NextKeyMarker : undefined;
        versionMarker = more ? res.NextVersionIdMarker : undefined;
      } while (keyMarker);
    } catch (err) {
      throw this.error('LIST versions of', prefix || '/', err);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Sets one version's retention (S3 PutObjectRetention). Never sends
   * x-amz-bypass-governance-retention: an earlier date than the stored one is
   * refused by the store, which is the backstop for a caller that read a
   * stale date (src/catalog/lock-extend.ts reads first and only moves later).
   */
  async putRetention(key: string, retention: ObjectLockRetention, versionId?: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          ...(versionId ? { VersionId: versionId } : {}),
          Retention: {
            Mode: retention.mode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE',
            RetainUntilDate: retention.retainUntil,
          },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'AccessDenied') {
        throw new LifeboatError(
          'PRIVILEGE_MISSING',
          `PUT retention of ${key} in ${this.url} refused (AccessDenied): ${this.identity.describe} lacks s3:PutObjectRetention on s3://${this.bucket}/${this.prefix}`,
          {
            hints: [
              'expire extends the Object Lock of backups the retention tiers keep: grant s3:PutObjectRetention to the expire identity (docs/iam/expire.json)',
              'nothing was deleted before this; run lifeboat expire again once the identity has it',
            ],
            cause: err,
          },
        );
      }
      throw this.error('PUT retention of', key, err);
    }
  }

  private async readBucketLock(): Promise<BucketObjectLock> {
    let versioning: BucketObjectLock['versioning'];
    try {
      const v = await this.client.send(new GetBucketVersioningCommand({ Bucket: this.bucket }));
      versioning = v.Status === 'Enabled' ? 'enabled' : v.Status === 'Suspended' ? 'suspended' : 'off';
    } catch (err) {
      throw this.error('GET versioning of', '/', err);
    }
    try {
      const res = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      const cfg = res.ObjectLockConfiguration;
      const rule = cfg?.Rule?.DefaultRetention;
      const mode = rule?.Mode === 'GOVERNANCE' ? 'governance' : rule?.Mode === 'COMPLIANCE' ? 'compliance' : undefined;
      return {
        enabled: cfg?.ObjectLockEnabled === 'Enabled',
        versioning,
        ...(mode
          ? {
              defaultRetention: {
                mode,
                ...(rule?.Days ? { days: rule.Days } : {}),
                ...(rule?.Years ? { years: rule.Years } : {}),
              },
            }
          : {}),
      };
    } catch (err) {
      const name = (err as { name?: string }).name ?? '';
      if (name === 'ObjectLockConfigurationNotFoundError' || name === 'ObjectLockConfigurationNotFound')
        return { enabled: false, versioning };
      throw this.error('GET object lock configuration of', '/', err);
    }
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

  /** Maps an SDK failure to an operator's message; never carries credentials. */
  private error(op: string, key: string, err: unknown): LifeboatError {
    const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const code = status(err);
    const at = `${this.url}${this.endpoint.url ? ` at ${stripUserinfo(this.endpoint.url)}` : ''}`;
    const said = redact(`${e.name ?? 'Error'}${code ? ` (HTTP ${code})` : ''}: ${e.message ?? e.code ?? String(err)}`);
    const what = `${op} ${key} in ${at} failed: ${this.identity.kind === 'static' ? redactValues(said, Object.values(this.identity.credentials)) : said}`;
    const endpointHint = this.endpoint.url
      ? `the endpoint comes from $${this.endpoint.source}; check that it is right and the store is up`
      : `no endpoint is set (looked at ${this.endpoint.source}), so AWS S3 itself is used; for MinIO or Ceph set one of them`;
    const credentialHint =
      this.identity.kind === 'default'
        ? 'credentials come from the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role; check that the user running lifeboat has them'
        : `credentials are ${this.identity.describe}; check that they are this role's (docs/iam/ has each role's policy)`;
    const name = e.name ?? '';
    const lock = this.writeSettings.objectLock;
    if (lock && /ObjectLockConfiguration|object lock/i.test(`${name} ${e.message ?? ''}`)) {
      return new LifeboatError('REPOSITORY_INVALID', what, {
        hints: [
          `the runbook's ${this.runbookField}.objectLock (${lock.mode}, ${lock.days} days) needs a bucket created with Object Lock enabled; s3://${this.bucket} has none`,
          `create one with it (aws s3api create-bucket --object-lock-enabled-for-bucket, or mc mb --with-lock) and point the repository there, or remove ${this.runbookField}.objectLock`,
        ],
        cause: err,
      });
    }
    const sse = this.writeSettings.serverSide;
    if (sse && /kms|encrypt/i.test(`${name} ${e.message ?? ''}`)) {
      return new LifeboatError('REPOSITORY_INVALID', what, {
        hints: [
          sse.mode === 'SSE-KMS'
            ? `the store refused server-side encryption with KMS key ${JSON.stringify(sse.kmsKeyId)} (runbook ${this.runbookField}.serverSide): check the key id, that the key exists and is enabled, and that the credentials may use it (kms:GenerateDataKey, kms:Decrypt)`
            : `the store refused server-side encryption SSE-S3 (runbook ${this.runbookField}.serverSide): check that the store supports it (MinIO needs a KMS configured)`,
        ],
        cause: err,
      });
    }
    if (name === 'NoSuchBucket') {
      return new LifeboatError('REPOSITORY_INVALID', what, {
        hints: [`create the bucket ${this.bucket} or fix the repository URL`, endpointHint],
        cause: err,
      });
    }
    if (name === 'AccessDenied') {
      // Signed and recognised, but not allowed: a policy question no retry answers.
      const permission = permissionFor(op);
      return new LifeboatError(
        'PRIVILEGE_MISSING',
        `${what}: ${this.identity.describe} lacks ${permission} on s3://${this.bucket}/${this.prefix}`,
        {
          hints: [
            `grant ${permission} to that identity, or run this with the identity whose policy has it (docs/iam/: archive and backup write, restore reads, expire deletes)`,
            credentialHint,
          ],
          cause: err,
        },
      );
    }
    if (code === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Credential|ExpiredToken/i.test(name)) {
      return new LifeboatError('REPOSITORY_UNREACHABLE', what, {
        hints: [credentialHint, `the credentials need read/write access to s3://${this.bucket}/${this.prefix}`],
        cause: err,
      });
    }
    return new LifeboatError('REPOSITORY_UNREACHABLE', what, { hints: [endpointHint, credentialHint], cause: err });
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

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || (status(err) === 404 && name !== 'NoSuchBucket');
}

function stripUserinfo(url: string): string {
  return url.replace(/^([a-z0-9+.-]+:\/\/)[^/@]*@/i, '$1');
}

function redactValues(text: string, values: string[]): string {
  let out = text;
  for (const value of values) if (value.length >= 4) out = out.split(value).join('[redacted]');
  return out;
}

/** Removes any credential value that an error message might echo. */
function redact(text: string): string {
  let out = text;
  for (const name of SECRET_ENVS) {
    const value = process.env[name];
    if (value && value.length >= 4) out = out.split(value).join('[redacted]');
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
