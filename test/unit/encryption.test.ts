// The encrypted object format (src/repository/encryption-format.ts) and the
// decorator (src/repository/encrypted.ts): round trips at every chunk
// boundary, and every way a stored object can be wrong refused with a
// message naming the object and the key id: a changed chunk, a cut-short or
// reordered object, an object moved to another name, a wrong, unknown or
// missing key. The decorator runs over file:// and the harness's MinIO.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LifeboatError } from '../../src/errors';
import {
  CHUNK_BYTES,
  HEADER_BYTES,
  TAG_BYTES,
  openBuffer,
  openStream,
  plaintextSize,
  sealBuffer,
  sealLine,
  sealStream,
  sealedKeyId,
  sealedSize,
} from '../../src/repository/encryption-format';
import { EncryptedRepository } from '../../src/repository/encrypted';
import { FileRepository } from '../../src/repository/file';
import {
  KeyRing,
  encryptionArgs,
  encryptionFromArgs,
  parseKeyText,
  restoreEncryption,
} from '../../src/repository/keys';
import { S3Repository } from '../../src/repository/s3';
import { Repository as RepositorySchema } from '../../src/runbook/schema';
import type { Repository } from '../../src/repository/types';
import { s3RepoUrl, useS3Env } from '../harness/services';

const K1 = 'LIFEBOAT_TEST_ENC_K1';
const K2 = 'LIFEBOAT_TEST_ENC_K2';
const WRONG = 'LIFEBOAT_TEST_ENC_WRONG';
const UNSET = 'LIFEBOAT_TEST_ENC_UNSET';
const w = { url: 'file:///repo', key: 'orders/wal/000000010000000000000003.zst' };
const MARKER = Buffer.from('plaintext-marker-7f3a91');
const tmpRoots: string[] = [];

beforeAll(() => {
  process.env[K1] = randomBytes(32).toString('base64');
  process.env[K2] = randomBytes(32).toString('hex');
  process.env[WRONG] = randomBytes(32).toString('base64');
  delete process.env[UNSET];
});

afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

const ringK1 = () => new KeyRing({ keyId: 'k1', keyEnv: K1 });
const ringK2withK1 = () => new KeyRing({ keyId: 'k2', keyEnv: K2, previous: [{ keyId: 'k1', keyEnv: K1 }] });

/** `n` bytes with the marker in every chunk. */
function plaintext(n: number): Buffer {
  const b = randomBytes(n);
  for (let off = 0; off + MARKER.length <= n; off += CHUNK_BYTES) MARKER.copy(b, off);
  return b;
}

/** A stream of `b` in pieces of odd sizes, as a socket or a file stream delivers it. */
function pieces(b: Buffer): Readable {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < b.length; i++) {
    const n = [1, 7, 65536, 1 << 20, 333_333][i % 5] as number;
    out.push(b.subarray(off, off + n));
    off += n;
  }
  return Readable.from(out);
}

async function drain(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

function caught(f: () => unknown): LifeboatError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(LifeboatError);
    return err as LifeboatError;
  }
  throw new Error('expected an error');
}

async function rejected(p: Promise<unknown>): Promise<LifeboatError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LifeboatError);
    return err as LifeboatError;
  }
  throw new Error('expected an error');
}

describe('the encrypted object format', () => {
  it.each([0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 5, 16 * CHUNK_BYTES])(
    'round-trips %i bytes whole and streamed, with the size computable from the stored size',
    async (n) => {
      const plain = plaintext(n);
      const sealed = sealBuffer(plain, ringK1(), w);
      expect(sealed.length).toBe(sealedSize(n));
      expect(plaintextSize(sealed.length)).toBe(n);
      expect(sealedKeyId(sealed)).toBe('k1');
      if (n >= MARKER.length) expect(sealed.includes(MARKER)).toBe(false);
      expect(openBuffer(sealed, ringK1(), w).equals(plain)).toBe(true);
      const streamed = await drain(sealStream(pieces(plain), ringK1(), w));
      expect(streamed.length).toBe(sealed.length);
      expect(openBuffer(streamed, ringK1(), w).equals(plain)).toBe(true);
      expect((await drain(await openStream(pieces(sealed), ringK1(), w))).equals(plain)).toBe(true);
    },
  );

  it('seals the same plaintext differently each time (a fresh salt per object)', () => {
    const plain = plaintext(100);
    expect(sealBuffer(plain, ringK1(), w).equals(sealBuffer(plain, ringK1(), w))).toBe(false);
  });

  it('refuses a changed chunk, naming the object, the key id and the chunk', async () => {
    const sealed = sealBuffer(plaintext(3 * CHUNK_BYTES + 10), ringK1(), w);
    const bad = Buffer.from(sealed);
    const at = HEADER_BYTES + (CHUNK_BYTES + TAG_BYTES) + 1000;
    bad[at] = (bad[at] as number) ^ 1;
    const e = caught(() => openBuffer(bad, ringK1(), w));
    expect(e.code).toBe('ENCRYPTED_OBJECT_DAMAGED');
    expect(e.what).toBe(
      `object ${w.key} in file:///repo (key id k1) fails authentication at chunk 1: changed, or chunks reordered`,
    );
    // Streamed: chunk 0 comes out, chunk 1 fails the stream before any of its bytes.
    const s = await openStream(pieces(bad), ringK1(), w);
    const got: Buffer[] = [];
    const err = await rejected(
      (async () => {
        for await (const p of s) got.push(p as Buffer);
      })(),
    );
    expect(err.code).toBe('ENCRYPTED_OBJECT_DAMAGED');
    expect(Buffer.concat(got).length).toBe(CHUNK_BYTES);
  });

  it('refuses an object cut short at a chunk boundary, inside a chunk, or inside its header', async () => {
    const sealed = sealBuffer(plaintext(2 * CHUNK_BYTES + 10), ringK1(), w);
    const atBoundary = sealed.subarray(0, HEADER_BYTES + 2 * (CHUNK_BYTES + TAG_BYTES));
    expect(caught(() => openBuffer(atBoundary, ringK1(), w)).what).toBe(
      `object ${w.key} in file:///repo (key id k1) is cut short: it ends after 2 full chunks, without its last chunk`,
    );
    const err = await rejected(drain(await openStream(pieces(atBoundary), ringK1(), w)));
    expect(err.what).toContain('is cut short: it ends after 2 full chunks, without its last chunk');
    // One chunk and a bit of the next: the bit is taken for the last chunk and fails.
    const inside = sealed.subarray(0, HEADER_BYTES + CHUNK_BYTES + TAG_BYTES + 500);
    expect(caught(() => openBuffer(inside, ringK1(), w)).what).toContain(
      'fails authentication at chunk 1, its last: changed, or cut short',
    );
    // A whole last chunk dropped where the object is a multiple of the chunk size.
    const even = sealBuffer(plaintext(2 * CHUNK_BYTES), ringK1(), w);
    expect(caught(() => openBuffer(even.subarray(0, even.length - TAG_BYTES), ringK1(), w)).what).toContain(
      'is cut short',
    );
    expect(caught(() => openBuffer(sealed.subarray(0, 40), ringK1(), w)).what).toContain(
      'is cut short inside its encryption header (40 of 74 bytes)',
    );
  });

  it('refuses reordered chunks and bytes added after the last chunk', () => {
    const sealed = sealBuffer(plaintext(2 * CHUNK_BYTES + 10), ringK1(), w);
    const step = CHUNK_BYTES + TAG_BYTES;
    const c0 = sealed.subarray(HEADER_BYTES, HEADER_BYTES + step);
    const c1 = sealed.subarray(HEADER_BYTES + step, HEADER_BYTES + 2 * step);
    const swapped = Buffer.concat([sealed.subarray(0, HEADER_BYTES), c1, c0, sealed.subarray(HEADER_BYTES + 2 * step)]);
    expect(caught(() => openBuffer(swapped, ringK1(), w)).what).toContain(
      'fails authentication at chunk 0: changed, or chunks reordered',
    );
    const longer = Buffer.concat([sealed, Buffer.alloc(30)]);
    expect(caught(() => openBuffer(longer, ringK1(), w)).code).toBe('ENCRYPTED_OBJECT_DAMAGED');
  });

  it('refuses an object moved under another name (the name is authenticated)', () => {
    const sealed = sealBuffer(plaintext(100), ringK1(), w);
    const other = { ...w, key: 'orders/wal/000000010000000000000004.zst' };
    expect(caught(() => openBuffer(sealed, ringK1(), other)).what).toBe(
      `object ${other.key} in file:///repo (key id k1) fails authentication at chunk 0, its last: changed, or cut short (0 full chunks and a last one expected)`,
    );
  });

  it('refuses a wrong key as a wrong key, naming the object, the key id and the variable', async () => {
    const sealed = sealBuffer(plaintext(100), ringK1(), w);
    const wrong = new KeyRing({ keyId: 'k1', keyEnv: WRONG });
    const e = caught(() => openBuffer(sealed, wrong, w));
    expect(e.code).toBe('ENCRYPTION_KEY_MISMATCH');
    expect(e.message).toBe(
      `object ${w.key} in file:///repo was encrypted with key id k1, but the key read from environment variable ${WRONG} is not that key\n` +
        `HINT: set environment variable ${WRONG} to the key that had id k1 when the object was written\n` +
        'HINT: a key id names one key for good: a new key gets a new id, and the old one moves to repository.encryption.previous',
    );
    // Streamed: refused before the stream is handed out.
    expect((await rejected(openStream(pieces(sealed), wrong, w))).code).toBe('ENCRYPTION_KEY_MISMATCH');
  });

  it('refuses a key id that is not configured, and a key whose variable is not set', () => {
    const sealed = sealBuffer(plaintext(100), ringK1(), w);
    const e = caught(() => openBuffer(sealed, new KeyRing({ keyId: 'k2', keyEnv: K2 }), w));
    expect(e.code).toBe('ENCRYPTION_KEY_MISMATCH');
    expect(e.what).toBe(
      `object ${w.key} in file:///repo was encrypted with key id k1, which is not configured (configured: k2)`,
    );
    expect(e.hints[0]).toContain('previous: [{ keyId: k1, keyEnv: LIFEBOAT_REPO_KEY_K1 }]');
    const unset = caught(() => openBuffer(sealed, new KeyRing({ keyId: 'k1', keyEnv: UNSET }), w));
    expect(unset.code).toBe('SECRET_MISSING');
    expect(unset.what).toBe(
      `encryption key k1 for object ${w.key} in file:///repo: environment variable ${UNSET} is not set`,
    );
    // Writing needs the current key before anything is sealed.
    expect(caught(() => sealBuffer(plaintext(10), new KeyRing({ keyId: 'k3', keyEnv: UNSET }), w)).code).toBe(
      'SECRET_MISSING',
    );
  });

  it('reads objects of a previous key after a rotation and writes new ones with the current key', () => {
    const old = sealBuffer(plaintext(100), ringK1(), w);
    const ring = ringK2withK1();
    expect(openBuffer(old, ring, w).length).toBe(100);
    expect(sealedKeyId(sealBuffer(plaintext(10), ring, w))).toBe('k2');
  });

  it('refuses a plaintext object unless readUnencrypted is set', async () => {
    const plain = Buffer.from('{"backupId":"x"}\n');
    expect(caught(() => openBuffer(plain, ringK1(), w)).what).toBe(
      `object ${w.key} in file:///repo is not encrypted (it has no Lifeboat encryption header), and the repository is configured for encryption`,
    );
    const lenient = new KeyRing({ keyId: 'k1', keyEnv: K1, readUnencrypted: true });
    expect(openBuffer(plain, lenient, w).equals(plain)).toBe(true);
    const big = plaintext(200_000);
    expect((await drain(await openStream(pieces(big), lenient, w))).equals(big)).toBe(true);
    expect((await rejected(openStream(pieces(big), ringK1(), w))).code).toBe('ENCRYPTED_OBJECT_DAMAGED');
  });

  it('seals log lines one by one and reads them back in order', () => {
    const log = Buffer.from([sealLine('{"seq":1}', ringK1(), w), sealLine('{"seq":2}\n', ringK1(), w), ''].join('\n'));
    expect(log.includes('seq')).toBe(false);
    expect(openBuffer(log, ringK1(), w).toString()).toBe('{"seq":1}\n{"seq":2}\n');
  });

  it('parses keys as base64 or hex, 32 bytes only', () => {
    const key = randomBytes(32);
    expect(parseKeyText(`${key.toString('base64')}\n`)?.equals(key)).toBe(true);
    expect(parseKeyText(key.toString('hex'))?.equals(key)).toBe(true);
    expect(parseKeyText(randomBytes(16).toString('base64'))).toBeUndefined();
    expect(parseKeyText('not a key')).toBeUndefined();
    process.env.LIFEBOAT_TEST_ENC_SHORT = randomBytes(16).toString('base64');
    const e = caught(() => new KeyRing({ keyId: 'k1', keyEnv: 'LIFEBOAT_TEST_ENC_SHORT' }).key('k1', 'x'));
    expect(e.what).toBe(
      'encryption key k1: environment variable LIFEBOAT_TEST_ENC_SHORT does not hold a 32-byte key (24 characters; expected 44 base64 characters or 64 hex digits)',
    );
    expect(e.message).not.toContain(process.env.LIFEBOAT_TEST_ENC_SHORT);
  });

  it('reads a key file and refuses one every user may read', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-key-'));
    tmpRoots.push(dir);
    const file = path.join(dir, 'k1.key');
    writeFileSync(file, `${process.env[K1]}\n`, { mode: 0o600 });
    expect(
      new KeyRing({ keyId: 'k1', keyFile: file })
        .key('k1', 'x')
        .equals(Buffer.from(process.env[K1] as string, 'base64')),
    ).toBe(true);
    chmodSync(file, 0o644);
    expect(caught(() => new KeyRing({ keyId: 'k1', keyFile: file }).key('k1', 'x')).what).toBe(
      `encryption key k1: key file ${file} is readable by every user on this host`,
    );
  });

  it('passes the settings on the command line as names only, and reads them back', () => {
    const settings = { keyId: 'k2', keyEnv: K2, previous: [{ keyId: 'k1', keyFile: '/etc/lifeboat/k1.key' }] };
    const args = encryptionArgs(settings);
    expect(args).toEqual(['--encryption-key', `k2=${K2}`, '--encryption-key', 'k1=/etc/lifeboat/k1.key']);
    expect(args.join(' ')).not.toContain(process.env[K2]);
    expect(encryptionFromArgs([`k2=${K2}`, 'k1=/etc/lifeboat/k1.key'])).toEqual(settings);
    expect(() => encryptionFromArgs(['k2'])).toThrow(
      '--encryption-key "k2": expected <key id>=<VARIABLE> or <key id>=</path/to/key/file>',
    );
  });

  it('gives restore_command the keys of every repository of a runbook (archive-get opens the fallback ones with them)', () => {
    const one = { keyId: 'k2', keyEnv: 'A', previous: [{ keyId: 'k1', keyEnv: 'B' }] };
    expect(restoreEncryption([{ encryption: one }])).toEqual(one);
    expect(restoreEncryption([{}, {}])).toBeUndefined();
    expect(
      restoreEncryption([
        { encryption: one },
        { encryption: { keyId: 'dr1', keyFile: '/etc/k', previous: [{ keyId: 'k1', keyEnv: 'OTHER' }] } },
      ]),
    ).toEqual({
      keyId: 'k2',
      keyEnv: 'A',
      previous: [
        { keyId: 'k1', keyEnv: 'B' },
        { keyId: 'dr1', keyFile: '/etc/k' },
      ],
    });
    // A repository without encryption in the list: its plaintext objects must stay readable.
    expect(restoreEncryption([{ encryption: one }, {}])).toEqual({ ...one, readUnencrypted: true });
  });
});

describe.each([
  [
    'file://',
    (): Repository => {
      const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-enc-repo-'));
      tmpRoots.push(root);
      return new FileRepository(`file://${root}`);
    },
  ],
  [
    's3://',
    (): Repository => {
      useS3Env();
      return S3Repository.fromUrl(s3RepoUrl('enc-unit'));
    },
  ],
])('an encrypted %s repository', (_kind, make) => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('stores ciphertext and serves plaintext: whole, streamed, appended; sizes and sha256 of the plaintext', async () => {
    const inner = make();
    const repo = new EncryptedRepository(inner, { keyId: 'k1', keyEnv: K1 });
    const small = plaintext(5000);
    const big = plaintext(2 * CHUNK_BYTES + 123);
    const run = randomBytes(4).toString('hex');
    const k = (n: string) => `c-${run}/${n}`;
    expect(await repo.put(k('small'), small, { sha256: sha(small), ifAbsent: true })).toEqual({ written: true });
    let progress = 0;
    await repo.put(k('big'), pieces(big), { sha256: sha(big), onProgress: (n) => (progress = n) });
    expect(progress).toBe(big.length);
    await repo.append(k('audit.jsonl'), '{"seq":1,"note":"plaintext-marker-7f3a91"}');
    await repo.append(k('audit.jsonl'), '{"seq":2}');

    const got = await repo.get(k('small'));
    expect(got?.body.equals(small)).toBe(true);
    expect(got?.info.sha256).toBe(sha(small));
    expect((await repo.head(k('big')))?.size).toBe(big.length);
    expect((await repo.list(`c-${run}/`)).map((i) => [i.key, i.size])).toContainEqual([k('big'), big.length]);
    const streamed = await repo.getStream(k('big'));
    expect(streamed?.info.size).toBe(big.length);
    expect((await drain(streamed!.stream)).equals(big)).toBe(true);
    expect((await repo.get(k('audit.jsonl')))?.body.toString()).toBe(
      '{"seq":1,"note":"plaintext-marker-7f3a91"}\n{"seq":2}\n',
    );
    // An existing object comes back as existing, with its plaintext size.
    const again = await repo.put(k('small'), small, { sha256: sha(small), ifAbsent: true });
    expect(again).toMatchObject({ written: false, existing: { size: small.length, sha256: sha(small) } });
    // openLocal is never offered: it would hand restore's tar the ciphertext.
    expect((repo as Repository).openLocal).toBeUndefined();

    // What the store holds: ciphertext under the key id, no plaintext marker anywhere.
    for (const name of ['small', 'big', 'audit.jsonl']) {
      const raw = (await inner.get(k(name)))!.body;
      expect(raw.includes(MARKER)).toBe(false);
      if (name !== 'audit.jsonl') expect(sealedKeyId(raw)).toBe('k1');
    }
    (inner as { destroy?: () => void }).destroy?.();
  });

  it('refuses to read with a wrong key, naming the object and the key id', async () => {
    const inner = make();
    const run = randomBytes(4).toString('hex');
    const key = `c-${run}/wal/000000010000000000000001.zst`;
    const body = plaintext(100);
    await new EncryptedRepository(inner, { keyId: 'k1', keyEnv: K1 }).put(key, body, { sha256: sha(body) });
    const wrong = new EncryptedRepository(inner, { keyId: 'k1', keyEnv: WRONG });
    const e = await rejected(wrong.get(key));
    expect(e.code).toBe('ENCRYPTION_KEY_MISMATCH');
    expect(e.what).toBe(
      `object ${key} in ${inner.url} was encrypted with key id k1, but the key read from environment variable ${WRONG} is not that key`,
    );
    expect((await rejected(wrong.getStream(key))).code).toBe('ENCRYPTION_KEY_MISMATCH');
    (inner as { destroy?: () => void }).destroy?.();
  });
});

it('an encrypted file:// repository leaves no plaintext file behind (temporary files included)', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-enc-files-'));
  tmpRoots.push(root);
  const repo = new EncryptedRepository(new FileRepository(`file://${root}`), { keyId: 'k1', keyEnv: K1 });
  const body = plaintext(3 * CHUNK_BYTES);
  await repo.put('c/base/b1/base.0001.tar.zst', pieces(body), {
    sha256: createHash('sha256').update(body).digest('hex'),
  });
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(root);
  expect(files.map((f) => path.relative(root, f)).sort()).toEqual([
    'c/base/b1/base.0001.tar.zst',
    'c/base/b1/base.0001.tar.zst.sha256',
  ]);
  for (const f of files) expect(readFileSync(f).includes(MARKER)).toBe(false);
});

describe('repository.encryption in a runbook', () => {
  const parse = (encryption: unknown) =>
    RepositorySchema.safeParse({ url: 'file:///var/lib/lifeboat/repo', encryption });
  const messages = (encryption: unknown) => {
    const r = parse(encryption);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('takes a current key and previous ones, by variable or file', () => {
    const r = parse({
      keyId: 'k2',
      keyEnv: 'LIFEBOAT_REPO_KEY',
      previous: [{ keyId: 'k1', keyFile: '/etc/lifeboat/k1.key' }],
    });
    expect(r.success && r.data.encryption).toEqual({
      keyId: 'k2',
      keyEnv: 'LIFEBOAT_REPO_KEY',
      previous: [{ keyId: 'k1', keyFile: '/etc/lifeboat/k1.key' }],
    });
  });

  it('names the field and what was expected for a key value in place of a name, no source, two sources, a repeated id', () => {
    expect(messages({ keyId: 'k1', keyEnv: 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8=' })).toEqual([
      'encryption.keyEnv: expected the name of an environment variable (letters, digits and _), not its value',
    ]);
    expect(messages({ keyId: 'k1' })).toEqual([
      'encryption: expected exactly one of keyEnv (an environment variable holding the key) and keyFile (a file holding it)',
    ]);
    expect(messages({ keyId: 'k1', keyEnv: 'A', keyFile: '/k' })).toEqual([
      'encryption: expected exactly one of keyEnv (an environment variable holding the key) and keyFile (a file holding it)',
    ]);
    expect(messages({ keyId: 'k1', keyEnv: 'A', previous: [{ keyId: 'k1', keyEnv: 'B' }] })).toEqual([
      'encryption.previous.0.keyId: expected a key id not used above, got "k1" twice (each key has its own id)',
    ]);
    expect(messages({ keyId: 'key one', keyEnv: 'A' })).toEqual([
      'encryption.keyId: expected a key id (1 to 32 letters, digits, ".", "_" or "-", e.g. k1)',
    ]);
  });
});
