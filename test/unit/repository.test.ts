// Both repository kinds against the same behaviour: file:// on a temporary
// directory, s3:// on the harness's MinIO. Nothing is mocked.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, chownSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository } from '../../src/repository/file';
import { S3Repository } from '../../src/repository/s3';
import type { Repository } from '../../src/repository/types';
import { LifeboatError } from '../../src/errors';
import { freePort } from '../harness/ports';
import { s3RepoUrl, useS3Env } from '../harness/services';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const tmpRoots: string[] = [];

afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

function newFileRepo(): FileRepository {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repo-'));
  tmpRoots.push(root);
  return new FileRepository(`file://${root}`);
}

function newS3Repo(): S3Repository {
  useS3Env();
  return S3Repository.fromUrl(s3RepoUrl('unit'));
}

/** A stream that delivers some bytes and then fails, like a dropped connection. */
function failingStream(): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(64 * 1024, 7));
      } else {
        this.destroy(new Error('connection reset while reading the source'));
      }
    },
  });
}

describe.each([
  ['file://', newFileRepo],
  ['s3://', newS3Repo],
] as const)('%s repository', (_kind, make) => {
  let repo: Repository;
  beforeAll(() => {
    repo = make();
  });

  it('stores an object with the sha256 of its original content and reads it back', async () => {
    const body = Buffer.from('segment bytes');
    expect(await repo.put('c/wal/a.zst', body, { sha256: sha('original') })).toEqual({ written: true });
    const got = await repo.get('c/wal/a.zst');
    expect(got?.body.equals(body)).toBe(true);
    expect(got?.info).toMatchObject({ key: 'c/wal/a.zst', size: body.length, sha256: sha('original') });
    expect(await repo.head('c/wal/a.zst')).toMatchObject({
      key: 'c/wal/a.zst',
      size: body.length,
      sha256: sha('original'),
    });
  });

  it('answers undefined for an object that is not there', async () => {
    expect(await repo.get('c/wal/missing.zst')).toBeUndefined();
    expect(await repo.head('c/wal/missing.zst')).toBeUndefined();
    expect(await repo.getStream('c/wal/missing.zst')).toBeUndefined();
  });

  it('with ifAbsent, keeps the stored object and reports it instead of overwriting', async () => {
    await repo.put('c/wal/b.zst', Buffer.from('first'), { sha256: sha('first'), ifAbsent: true });
    const second = await repo.put('c/wal/b.zst', Buffer.from('second'), { sha256: sha('second'), ifAbsent: true });
    expect(second).toMatchObject({ written: false, existing: { key: 'c/wal/b.zst', sha256: sha('first'), size: 5 } });
    expect((await repo.get('c/wal/b.zst'))?.body.toString()).toBe('first');
  });

  it('lets exactly one of several racing create-only writers win, with its own checksum', async () => {
    const bodies = ['one', 'two', 'three', 'four'].map((s) => Buffer.from(s));
    const results = await Promise.all(
      bodies.map((b) => repo.put('c/wal/race.zst', b, { sha256: sha(b), ifAbsent: true })),
    );
    expect(results.filter((r) => r.written)).toHaveLength(1);
    const got = await repo.get('c/wal/race.zst');
    expect(got?.info.sha256).toBe(sha(got!.body));
    for (const r of results) if (!r.written) expect(r.existing.sha256).toBe(sha(got!.body));
  });

  it('without ifAbsent, replaces the object and its checksum', async () => {
    await repo.put('c/evidence/r.json', Buffer.from('{"v":1}'), { sha256: sha('{"v":1}') });
    await repo.put('c/evidence/r.json', Buffer.from('{"v":2}'), { sha256: sha('{"v":2}') });
    const got = await repo.get('c/evidence/r.json');
    expect(got?.body.toString()).toBe('{"v":2}');
    expect(got?.info.sha256).toBe(sha('{"v":2}'));
  });

  it('stores a stream and streams it back', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    let progress = 0;
    await repo.put('c/base/b1/base.tar.zst', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
      sha256: sha(data),
      onProgress: (n) => (progress = n),
    });
    expect(progress).toBe(data.length);
    const got = await repo.getStream('c/base/b1/base.tar.zst');
    const chunks: Buffer[] = [];
    for await (const c of got!.stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(got!.info.sha256).toBe(sha(data));
  });

  it('leaves nothing visible when a streamed write fails half-way', async () => {
    await expect(repo.put('c/base/b2/base.tar.zst', failingStream(), { sha256: sha('x') })).rejects.toThrow();
    expect(await repo.head('c/base/b2/base.tar.zst')).toBeUndefined();
    expect((await repo.list('c/base/b2/')).map((o) => o.key)).toEqual([]);
  });

  it('lists every object under a prefix, recursively and sorted, without checksums or temporary files', async () => {
    await repo.put('l/wal/000000010000000000000002.zst', Buffer.from('2'), { sha256: sha('2') });
    await repo.put('l/wal/000000010000000000000001.zst', Buffer.from('1'), { sha256: sha('1') });
    await repo.put('l/wal/00000002.history', Buffer.from('h'), { sha256: sha('h') });
    await repo.put('l/base/b/backup.json', Buffer.from('{}'), { sha256: sha('{}') });
    await repo.put('l2/wal/x', Buffer.from('x'), { sha256: sha('x') });
    expect((await repo.list('l/')).map((o) => o.key)).toEqual([
      'l/base/b/backup.json',
      'l/wal/000000010000000000000001.zst',
      'l/wal/000000010000000000000002.zst',
      'l/wal/00000002.history',
    ]);
    expect((await repo.list('l/wal/00000001')).map((o) => [o.key, o.size])).toEqual([
      ['l/wal/000000010000000000000001.zst', 1],
      ['l/wal/000000010000000000000002.zst', 1],
    ]);
    expect(await repo.list('nothing-here/')).toEqual([]);
  });

  it('appends lines to a log object, creating it, without losing concurrent lines', async () => {
    await repo.append('c/audit/run1.jsonl', '{"n":0}');
    await Promise.all([1, 2, 3, 4, 5].map((n) => repo.append('c/audit/run1.jsonl', `{"n":${n}}\n`)));
    const lines = (await repo.get('c/audit/run1.jsonl'))!.body.toString().trimEnd().split('\n');
    expect(lines[0]).toBe('{"n":0}');
    expect([...lines].sort()).toEqual(['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']);
  });

  it('deletes objects, and deleting an absent one is not an error', async () => {
    await repo.put('d/wal/x.zst', Buffer.from('x'), { sha256: sha('x') });
    await repo.put('d/wal/y.zst', Buffer.from('y'), { sha256: sha('y') });
    await repo.delete(['d/wal/x.zst', 'd/wal/never-there.zst']);
    expect((await repo.list('d/')).map((o) => o.key)).toEqual(['d/wal/y.zst']);
  });
});

describe('file:// repository on disk', () => {
  it('never shows a temporary file or an object without its checksum sidecar', async () => {
    const repo = newFileRepo();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        repo.put(`c/wal/s${i}.zst`, Buffer.alloc(100_000, i), { sha256: sha(String(i)), ifAbsent: true }),
      ),
    );
    await expect(repo.put('c/wal/broken.zst', failingStream(), { sha256: sha('b') })).rejects.toThrow();
    const names = readdirSync(path.join(repo.root, 'c/wal')).sort();
    expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
    const objects = names.filter((n) => !n.endsWith('.sha256'));
    expect(objects).toHaveLength(20);
    for (const o of objects) expect(names).toContain(`${o}.sha256`);
  });

  it('refuses keys that would leave the repository', async () => {
    const repo = newFileRepo();
    await expect(repo.put('../escape', Buffer.from('x'), { sha256: sha('x') })).rejects.toThrow(
      "invalid repository key \"../escape\"\nHINT: keys are relative '/'-separated paths without '.' or '..' parts and not ending in .sha256",
    );
  });

  it('treats a missing repository directory as unreachable, never as an empty archive', async () => {
    const repo = new FileRepository('file:///nonexistent/lifeboat-repo');
    const expected =
      'the repository directory /nonexistent/lifeboat-repo does not exist\n' +
      'HINT: check that the volume holding it is mounted\n' +
      'HINT: a new repository is created by hand, so that an unmounted volume is never mistaken for an empty one: ' +
      'mkdir -p /nonexistent/lifeboat-repo && chown postgres /nonexistent/lifeboat-repo';
    await expect(repo.get('c/wal/000000010000000000000001.zst')).rejects.toThrow(expected);
    await expect(repo.list('c/wal/')).rejects.toThrow(expected);
    await expect(repo.put('c/wal/x', Buffer.from('x'), { sha256: sha('x') })).rejects.toThrow(expected);
  });

  it('hands directories and files that root creates to the owner of the repository root', async () => {
    if (process.getuid?.() !== 0) return; // only root can create files for another user
    const repo = newFileRepo();
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(repo.root, uid, gid);
    await repo.put('c/base/b1/backup.json', Buffer.from('{}'), { sha256: sha('{}') });
    await repo.append('c/audit/r.jsonl', 'line');
    for (const p of [
      'c',
      'c/base',
      'c/base/b1',
      'c/base/b1/backup.json',
      'c/base/b1/backup.json.sha256',
      'c/audit/r.jsonl',
    ]) {
      expect({ p, uid: statSync(path.join(repo.root, p)).uid }).toEqual({ p, uid });
    }
  });

  it('ignores a sidecar that does not hold a sha256', async () => {
    const repo = newFileRepo();
    await repo.put('c/x', Buffer.from('x'), { sha256: sha('x') });
    writeFileSync(path.join(repo.root, 'c/x.sha256'), 'not a checksum\n');
    expect(await repo.head('c/x')).toEqual(expect.not.objectContaining({ sha256: expect.anything() }));
  });
});

describe('s3:// repository errors', () => {
  it('prints its URL without credentials', () => {
    expect(S3Repository.fromUrl('s3://bucket/some/prefix/').url).toBe('s3://bucket/some/prefix');
  });

  it('names the endpoint and where it came from when the store is unreachable, and no secret', async () => {
    useS3Env();
    const port = await freePort();
    process.env.LIFEBOAT_TEST_DEAD_ENDPOINT = `http://127.0.0.1:${port}`;
    const repo = S3Repository.fromUrl('s3://lifeboat-test/x', { endpointEnv: 'LIFEBOAT_TEST_DEAD_ENDPOINT' });
    const err = await repo.get('c/wal/000000010000000000000001.zst').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).code).toBe('REPOSITORY_UNREACHABLE');
    expect((err as Error).message).toBe(
      `GET c/wal/000000010000000000000001.zst in s3://lifeboat-test/x at http://127.0.0.1:${port} failed: ` +
        `Error: connect ECONNREFUSED 127.0.0.1:${port}\n` +
        'HINT: the endpoint comes from $LIFEBOAT_TEST_DEAD_ENDPOINT; check that it is right and the store is up\n' +
        'HINT: credentials come from the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ' +
        'or an instance role; check that the user running lifeboat has them',
    );
    expect((err as Error).message).not.toContain(process.env.AWS_SECRET_ACCESS_KEY);
    delete process.env.LIFEBOAT_TEST_DEAD_ENDPOINT;
  });

  it('says which credentials are refused without printing them', async () => {
    useS3Env();
    const secret = process.env.AWS_SECRET_ACCESS_KEY!;
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong-secret-value';
    try {
      const repo = S3Repository.fromUrl(s3RepoUrl('badcreds'));
      const err = (await repo.head('c/x').catch((e: unknown) => e)) as LifeboatError;
      expect(err.code).toBe('REPOSITORY_UNREACHABLE');
      expect(err.message).toContain('HTTP 403');
      expect(err.hints[0]).toBe(
        'credentials come from the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role; check that the user running lifeboat has them',
      );
      expect(err.message).not.toContain('wrong-secret-value');
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = secret;
    }
  });

  it('reports a missing bucket as a configuration error, not as an absent object', async () => {
    useS3Env();
    const repo = S3Repository.fromUrl('s3://no-such-bucket-lifeboat/x');
    await expect(repo.head('c/wal/000000010000000000000001.zst')).rejects.toMatchObject({ code: 'REPOSITORY_INVALID' });
    await expect(repo.get('c/wal/000000010000000000000001.zst')).rejects.toMatchObject({ code: 'REPOSITORY_INVALID' });
  });
});
