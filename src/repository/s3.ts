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
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LifeboatError } from '../errors';
import type { RepositoryEnvOptions } from './index';
import type { ObjectInfo, PutOptions, PutResult, Repository } from './types';

const ENDPOINT_ENVS = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT'];
/** Environment variables whose values must never reach a message. */
const SECRET_ENVS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID'];
const APPEND_ATTEMPTS = 10;

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

  private constructor(
    readonly bucket: string,
    /** '' or 'some/prefix/' */
    readonly prefix: string,
    private readonly endpoint: Endpoint,
    region: string,
  ) {
    this.url = `s3://${bucket}/${prefix}`.replace(/\/$/, '');
    // The SDK warns on every start under Node 20 (the version Lifeboat
    // targets); archive-push starts once per WAL segment and its stderr goes
    // to PostgreSQL's log, where 8 lines per segment would bury real errors.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region,
      forcePathStyle: true,
      ...(endpoint.url ? { endpoint: endpoint.url } : {}),
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
      throw new LifeboatError('REPOSITORY_INVALID', `not an s3:// repository URL: ${JSON.stringify(stripUserinfo(url))}`, {
        hints: ['use s3://bucket/prefix (bucket names are lower-case letters, digits, dots and dashes)'],
      });
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
    return new S3Repository(bucket, prefix, endpoint, region);
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<PutResult> {
    const params: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: this.prefix + key,
      Metadata: { sha256: opts.sha256, ...(opts.restorePoints !== undefined ? { 'restore-points': String(opts.restorePoints) } : {}) },
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
      ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
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
        const upload = new Upload({ client: this.client, params: { ...params, Body: body }, queueSize: 4, partSize: 16 * 1024 * 1024 });
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
      const body = Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      return { body, info: this.info(key, body.length, res.Metadata, res.LastModified) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.error('GET', key, err);
    }
  }

  async getStream(key: string): Promise<{ stream: Readable; info: ObjectInfo } | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { stream: res.Body as Readable, info: this.info(key, res.ContentLength ?? 0, res.Metadata, res.LastModified) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.error('GET', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return this.info(key, res.ContentLength ?? 0, res.Metadata, res.LastModified);
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
      if (status(err) === 404) throw this.error('HEAD', '/', Object.assign(new Error('the bucket does not exist'), { name: 'NoSuchBucket' }));
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
          out.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.error('LIST', prefix || '/', err);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true },
          }),
        );
      } catch (err) {
        throw this.error('DELETE', batch[0] ?? '', err);
      }
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new LifeboatError(
          'REPOSITORY_UNREACHABLE',
          `${this.url}: ${failed.length} of ${batch.length} deletions failed; first: ${first?.Key ?? '?'}: ${first?.Code ?? ''} ${first?.Message ?? ''}`.trim(),
          { hints: ['check that the credentials may delete objects in this bucket (s3:DeleteObject)'] },
        );
      }
    }
  }

  /**
   * S3 has no append: read, add the line, write back on the condition that
   * nobody wrote in between (If-Match on the ETag, If-None-Match when new),
   * and start over when someone did.
   */
  async append(key: string, line: string): Promise<void> {
    const text = line.endsWith('\n') ? line : `${line}\n`;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      let current: Buffer = Buffer.alloc(0);
      let etag: string | undefined;
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
        current = Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
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
            Metadata: { sha256: createHash('sha256').update(body).digest('hex') },
            ...(etag ? { IfMatch: etag } : { IfNoneMatch: '*' }),
          }),
        );
        return;
      } catch (err) {
        if (status(err) !== 412 && status(err) !== 409) throw this.error('PUT', key, err);
        await sleep(20 * (attempt + 1));
      }
    }
    throw new LifeboatError('REPOSITORY_UNREACHABLE', `${this.url}: could not append to ${key}: ${APPEND_ATTEMPTS} concurrent writers in a row`, {
      hints: ['another process keeps rewriting this object; retry later'],
    });
  }

  /** Closes idle sockets so that a short-lived CLI process can exit at once. */
  destroy(): void {
    this.client.destroy();
  }

  private info(key: string, size: number, metadata: Record<string, string> | undefined, lastModified: Date | undefined): ObjectInfo {
    const sha256 = metadata?.sha256;
    const count = metadata?.['restore-points'];
    return {
      key,
      size,
      ...(sha256 ? { sha256 } : {}),
      ...(count !== undefined && /^\d+$/.test(count) ? { restorePoints: Number(count) } : {}),
      ...(lastModified ? { lastModified } : {}),
    };
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
    const what = `${op} ${key} in ${at} failed: ${redact(`${e.name ?? 'Error'}${code ? ` (HTTP ${code})` : ''}: ${e.message ?? e.code ?? String(err)}`)}`;
    const endpointHint = this.endpoint.url
      ? `the endpoint comes from $${this.endpoint.source}; check that it is right and the store is up`
      : `no endpoint is set (looked at ${this.endpoint.source}), so AWS S3 itself is used; for MinIO or Ceph set one of them`;
    const credentialHint =
      'credentials come from the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role; check that the user running lifeboat has them';
    const name = e.name ?? '';
    if (name === 'NoSuchBucket') {
      return new LifeboatError('REPOSITORY_INVALID', what, {
        hints: [`create the bucket ${this.bucket} or fix the repository URL`, endpointHint],
        cause: err,
      });
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
