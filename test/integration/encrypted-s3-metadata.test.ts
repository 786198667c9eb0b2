// Client-side encryption on s3:// (the shared MinIO), what the store keeps
// beside each sealed object: the key id that sealed it as user metadata
// (x-amz-meta-lifeboat-key-id, read by a raw HeadObject as an operator's
// tools would, and by head()), and an appended audit log's sha256 over its
// PLAINTEXT, as every other object's.
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepository } from '../../src/repository';
import type { Repository } from '../../src/repository/types';
import { sha256Hex } from '../../src/wal/compress';
import { s3Env, s3RepoUrl, useS3Env } from '../harness/services';

const K1_ENV = 'LB_T_META_K1';
const K2_ENV = 'LB_T_META_K2';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let url: string;
let raw: S3Client;
const opened: Repository[] = [];
async function open(
  encryption: { keyId: string; keyEnv: string; previous?: Array<{ keyId: string; keyEnv: string }> } | undefined,
): Promise<Repository> {
  const r = await openRepository(url, { endpointEnv: 'S3_ENDPOINT', ...(encryption ? { encryption } : {}) });
  opened.push(r);
  return r;
}
/** The stored object's user metadata, by the AWS SDK directly (not through Lifeboat). */
async function metadataOf(key: string): Promise<Record<string, string>> {
  const u = new URL(url);
  const res = await raw.send(new HeadObjectCommand({ Bucket: u.hostname, Key: `${u.pathname.slice(1)}/${key}` }));
  return res.Metadata ?? {};
}

beforeAll(() => {
  useS3Env();
  process.env[K1_ENV] = randomBytes(32).toString('base64');
  process.env[K2_ENV] = randomBytes(32).toString('base64');
  url = s3RepoUrl('enc-meta');
  const env = s3Env();
  raw = new S3Client({
    endpoint: env.S3_ENDPOINT,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
});

afterAll(() => {
  raw?.destroy();
  for (const r of opened) (r as { destroy?: () => void }).destroy?.();
});

describe('encrypted objects on s3://', () => {
  it('carry the key id that sealed them as user metadata lifeboat-key-id: a HEAD tells k1 from k2 after a rotation; plaintext objects carry none', async () => {
    const k1 = await open({ keyId: 'k1', keyEnv: K1_ENV });
    const body = Buffer.from('segment written with k1\n');
    await k1.put('c/wal/000000010000000000000001.zst', body, { sha256: sha256Hex(body) });
    const k2 = await open({ keyId: 'k2', keyEnv: K2_ENV, previous: [{ keyId: 'k1', keyEnv: K1_ENV }] });
    const streamed = Buffer.from('base backup part written with k2\n');
    const { Readable } = await import('node:stream');
    await k2.put('c/base/b1/base.0001.tar.zst', Readable.from([streamed]), { sha256: sha256Hex(streamed) });
    const plain = await open(undefined);
    await plain.put('c/plain.json', Buffer.from('{}\n'), { sha256: sha('{}\n') });

    expect(await metadataOf('c/wal/000000010000000000000001.zst')).toEqual({
      sha256: sha256Hex(body),
      'lifeboat-key-id': 'k1',
    });
    expect(await metadataOf('c/base/b1/base.0001.tar.zst')).toEqual({
      sha256: sha256Hex(streamed),
      'lifeboat-key-id': 'k2',
    });
    expect(await metadataOf('c/plain.json')).toEqual({ sha256: sha('{}\n') });
    // Through Lifeboat: head() and get() report it; the plaintext object has none.
    expect((await k2.head('c/wal/000000010000000000000001.zst'))?.keyId).toBe('k1');
    expect((await k2.head('c/base/b1/base.0001.tar.zst'))?.keyId).toBe('k2');
    const got = await k2.get('c/wal/000000010000000000000001.zst');
    expect({ body: got?.body.toString(), keyId: got?.info.keyId }).toEqual({ body: body.toString(), keyId: 'k1' });
    expect((await plain.head('c/plain.json'))?.keyId).toBeUndefined();
  });

  it('an appended audit log stores the sha256 of its plaintext, not of the sealed lines, and get() returns both lines', async () => {
    const repo = await open({ keyId: 'k1', keyEnv: K1_ENV });
    const key = 'c/audit/run-1.jsonl';
    await repo.append(key, '{"step":"first"}');
    const afterOne = await metadataOf(key);
    expect(afterOne.sha256).toBe(sha('{"step":"first"}\n'));
    await repo.append(key, '{"step":"second"}\n');
    const text = '{"step":"first"}\n{"step":"second"}\n';
    const got = await repo.get(key);
    expect(got?.body.toString()).toBe(text);
    expect(got?.info.sha256).toBe(sha(text));
    expect((await repo.head(key))?.sha256).toBe(sha(text));
    // What is stored is sealed: neither line in the clear, and its own sha256 differs from the one recorded.
    const u = new URL(url);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const stored = Buffer.from(
      await (
        await raw.send(new GetObjectCommand({ Bucket: u.hostname, Key: `${u.pathname.slice(1)}/${key}` }))
      ).Body!.transformToByteArray(),
    );
    expect(stored.includes('step')).toBe(false);
    expect(sha(stored)).not.toBe(sha(text));
  });
});
