// The header and the chunk cipher of an encrypted object, as
// src/repository/encryption-format.ts lays them out: the header written and
// parsed, the per-object keys (HKDF-SHA256 of the key and the salt), and
// AES-256-GCM over one chunk at a time, each chunk's nonce and additional
// data tying it to its place in its object. Errors name the object.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { LifeboatError } from '../errors';
import type { KeyRing } from './keys';

export const MAGIC = Buffer.from('LBEC', 'latin1');
export const FORMAT_VERSION = 1;
export const CHUNK_BYTES = 1 << 20;
export const TAG_BYTES = 16;
const KEY_ID_FIELD = 32;
const SALT_BYTES = 16;
const CHECK_BYTES = 16;
export const HEADER_BYTES = 4 + 1 + 1 + KEY_ID_FIELD + 4 + SALT_BYTES + CHECK_BYTES;
const HKDF_INFO = Buffer.from('lifeboat repository object v1');

export interface Header {
  keyId: string;
  chunkBytes: number;
  salt: Buffer;
  check: Buffer;
  raw: Buffer;
}

interface ObjectKeys {
  key: Buffer;
  check: Buffer;
  noncePrefix: Buffer;
}

function derive(master: Buffer, salt: Buffer): ObjectKeys {
  const okm = Buffer.from(hkdfSync('sha256', master, salt, HKDF_INFO, 32 + CHECK_BYTES + 4));
  return {
    key: okm.subarray(0, 32),
    check: okm.subarray(32, 32 + CHECK_BYTES),
    noncePrefix: okm.subarray(32 + CHECK_BYTES),
  };
}

function buildHeader(keyId: string, salt: Buffer, check: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = FORMAT_VERSION;
  h[5] = keyId.length;
  h.write(keyId, 6, 'latin1');
  h.writeUInt32BE(CHUNK_BYTES, 38);
  salt.copy(h, 42);
  check.copy(h, 58);
  return h;
}

export function hasMagic(buf: Buffer): boolean {
  return buf.length >= MAGIC.length && buf.subarray(0, MAGIC.length).equals(MAGIC);
}

/** The key id of a stored object, or undefined when it has no encryption header (for messages). */
export function sealedKeyId(buf: Buffer): string | undefined {
  if (!hasMagic(buf) || buf.length < HEADER_BYTES) return undefined;
  const n = buf[5] ?? 0;
  return n >= 1 && n <= KEY_ID_FIELD ? buf.toString('latin1', 6, 6 + n) : undefined;
}

/** What an object's errors say about it: "object <key> in <repository>". */
export interface Where {
  url: string;
  key: string;
}

export const objectAt = (w: Where) => `object ${w.key} in ${w.url}`;

export function damaged(w: Where, keyId: string | undefined, detail: string): LifeboatError {
  return new LifeboatError('ENCRYPTED_OBJECT_DAMAGED', `${objectAt(w)}${keyId ? ` (key id ${keyId})` : ''} ${detail}`, {
    hints: [
      'it was changed, cut short or reordered after Lifeboat wrote it (a damaged disk, a partial copy, or someone with write access to the store): nothing of it is used',
      'for WAL: recover to a target before this segment, or from a newer base backup; for a base backup: restore another one (lifeboat backups lists them)',
    ],
    details: { object: w.key, ...(keyId ? { keyId } : {}) },
  });
}

function wrongKey(w: Where, ring: KeyRing, keyId: string): LifeboatError {
  return new LifeboatError(
    'ENCRYPTION_KEY_MISMATCH',
    `${objectAt(w)} was encrypted with key id ${keyId}, but the key read from ${ring.describe(keyId)} is not that key`,
    {
      hints: [
        `set ${ring.describe(keyId)} to the key that had id ${keyId} when the object was written`,
        'a key id names one key for good: a new key gets a new id, and the old one moves to repository.encryption.previous',
      ],
      details: { object: w.key, keyId },
    },
  );
}

function aad(header: Buffer, objectKey: Buffer, final: boolean): Buffer {
  return Buffer.concat([header, Buffer.from([final ? 1 : 0]), objectKey]);
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

/** Seals the chunks of one object, in order. */
export class Sealer {
  readonly header: Buffer;
  private readonly keys: ObjectKeys;
  private readonly name: Buffer;
  private index = 0;

  constructor(ring: KeyRing, w: Where) {
    const salt = randomBytes(SALT_BYTES);
    this.keys = derive(ring.key(ring.currentId, objectAt(w)), salt);
    this.header = buildHeader(ring.currentId, salt, this.keys.check);
    this.name = Buffer.from(w.key);
  }

  seal(plain: Buffer, final: boolean): Buffer {
    const out = Buffer.allocUnsafe(plain.length + TAG_BYTES);
    this.sealInto(plain, final, out, 0);
    return out;
  }

  /** Seals one chunk into `out` at `at` (its ciphertext, then its tag); returns where it ends. */
  sealInto(plain: Buffer, final: boolean, out: Buffer, at: number): number {
    const c = createCipheriv('aes-256-gcm', this.keys.key, nonce(this.keys.noncePrefix, this.index++));
    c.setAAD(aad(this.header, this.name, final));
    let end = at + c.update(plain).copy(out, at);
    end += c.final().copy(out, end);
    return end + c.getAuthTag().copy(out, end);
  }
}

/** Opens the chunks of one object, in order; the key is checked when it is made. */
export class Opener {
  private readonly keys: ObjectKeys;
  private readonly name: Buffer;
  readonly keyId: string;
  index = 0;

  constructor(
    private readonly header: Header,
    ring: KeyRing,
    private readonly w: Where,
  ) {
    this.keyId = header.keyId;
    this.keys = derive(ring.key(header.keyId, objectAt(w)), header.salt);
    if (!timingSafeEqual(this.keys.check, header.check)) throw wrongKey(w, ring, header.keyId);
    this.name = Buffer.from(w.key);
  }

  open(sealed: Buffer, final: boolean): Buffer {
    if (sealed.length < TAG_BYTES) throw damaged(this.w, this.keyId, `is cut short inside chunk ${this.index}`);
    const out = Buffer.allocUnsafe(sealed.length - TAG_BYTES);
    this.openInto(sealed, final, out, 0);
    return out;
  }

  /**
   * Opens one chunk into `out` at `at`; returns where its plaintext ends.
   * Nothing of a chunk that fails authentication is used: the caller drops
   * `out` when this throws.
   */
  openInto(sealed: Buffer, final: boolean, out: Buffer, at: number): number {
    if (sealed.length < TAG_BYTES) throw damaged(this.w, this.keyId, `is cut short inside chunk ${this.index}`);
    const i = this.index++;
    const d = createDecipheriv('aes-256-gcm', this.keys.key, nonce(this.keys.noncePrefix, i));
    d.setAAD(aad(this.header.raw, this.name, final));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      const end = at + d.update(sealed.subarray(0, sealed.length - TAG_BYTES)).copy(out, at);
      return end + d.final().copy(out, end);
    } catch {
      throw damaged(
        this.w,
        this.keyId,
        final
          ? `fails authentication at chunk ${i}, its last: changed, or cut short (${i} full chunks and a last one expected)`
          : `fails authentication at chunk ${i}: changed, or chunks reordered`,
      );
    }
  }
}

export function parseHeader(buf: Buffer, w: Where): Header {
  if (buf.length < HEADER_BYTES)
    throw damaged(w, undefined, `is cut short inside its encryption header (${buf.length} of ${HEADER_BYTES} bytes)`);
  const version = buf[4];
  const n = buf[5] ?? 0;
  if (version !== FORMAT_VERSION) {
    throw damaged(
      w,
      undefined,
      `has encryption format version ${version ?? '?'}, which this Lifeboat does not read (it reads version ${FORMAT_VERSION}); a newer Lifeboat may have written it`,
    );
  }
  const chunkBytes = buf.readUInt32BE(38);
  if (n < 1 || n > KEY_ID_FIELD || chunkBytes !== CHUNK_BYTES)
    throw damaged(w, undefined, 'has a damaged encryption header');
  return {
    keyId: buf.toString('latin1', 6, 6 + n),
    chunkBytes,
    salt: Buffer.from(buf.subarray(42, 42 + SALT_BYTES)),
    check: Buffer.from(buf.subarray(58, 58 + CHECK_BYTES)),
    raw: Buffer.from(buf.subarray(0, HEADER_BYTES)),
  };
}
