// The stored form of an encrypted object (src/repository/encrypted.ts):
// AES-256-GCM in chunks, so a 100 GB base backup streams through a few MiB
// of memory and every chunk is authenticated before any of it is used.
//
//   header (74 bytes)
//     0   4  magic "LBEC"
//     4   1  format version (1)
//     5   1  key id length n (1..32)
//     6  32  key id (ASCII, zero-padded): which key sealed the object
//    38   4  plaintext chunk size, big-endian (1 MiB)
//    42  16  salt, random per object
//    58  16  key check: tells a wrong key from a damaged object
//   chunks: each `ciphertext || 16-byte GCM tag`; every chunk but the last
//     holds exactly one chunk size of plaintext, the last holds less (0 bytes
//     when the plaintext is a multiple of it), so a full-size chunk at the end
//     means the object was cut short.
//
// Per object, HKDF-SHA256(key, salt) gives the chunk key, the key check and
// a 4-byte nonce prefix; chunk i's nonce is that prefix and i (64 bits), so
// no two chunks anywhere share a key and nonce. The additional data of every
// chunk is the header, a final-chunk flag and the object's key (its name in
// the repository): a chunk moved within the object, between objects, or a
// last chunk dropped or added fails authentication.
//
// Append-only logs (the audit log) cannot be sealed as one stream: each line
// is sealed on its own and stored as `lbenc1 <base64>`, so concurrent
// appenders stay safe and the store still appends.
//
// The header and the per-chunk cipher are in encryption-chunks.ts; this file
// seals and opens whole objects, streams and log lines.
import { Readable } from 'node:stream';
import {
  CHUNK_BYTES,
  HEADER_BYTES,
  Opener,
  Sealer,
  TAG_BYTES,
  damaged,
  hasMagic,
  objectAt,
  parseHeader,
  type Where,
} from './encryption-chunks';
import { LifeboatError } from '../errors';
import type { KeyRing } from './keys';

// The layout's constants and names, for the readers of the stored form.
export {
  CHUNK_BYTES,
  FORMAT_VERSION,
  HEADER_BYTES,
  MAGIC,
  TAG_BYTES,
  damaged,
  hasMagic,
  sealedKeyId,
  type Where,
} from './encryption-chunks';

export const LINE_PREFIX = 'lbenc1 ';

/** Stored size of `plain` bytes, sealed. */
export function sealedSize(plain: number): number {
  return HEADER_BYTES + plain + TAG_BYTES * (Math.floor(plain / CHUNK_BYTES) + 1);
}

/**
 * The plaintext size of a sealed object of `stored` bytes, without reading
 * it (the header has a fixed size, every chunk but the last a fixed one);
 * undefined when no sealed object has that size.
 */
export function plaintextSize(stored: number): number | undefined {
  const n = stored - HEADER_BYTES - TAG_BYTES;
  if (n < 0) return undefined;
  const full = Math.floor(n / (CHUNK_BYTES + TAG_BYTES));
  const last = n - full * (CHUNK_BYTES + TAG_BYTES);
  return last < CHUNK_BYTES ? full * CHUNK_BYTES + last : undefined;
}

/** About how much plaintext is in `n` sealed bytes, for progress reports. */
export function plainBytesOf(n: number): number {
  const body = n - HEADER_BYTES;
  if (body <= 0) return 0;
  return Math.max(0, body - TAG_BYTES * Math.ceil(body / (CHUNK_BYTES + TAG_BYTES)));
}

function notSealed(w: Where): LifeboatError {
  return new LifeboatError(
    'ENCRYPTED_OBJECT_DAMAGED',
    `${objectAt(w)} is not encrypted (it has no Lifeboat encryption header), and the repository is configured for encryption`,
    {
      hints: [
        'objects written before encryption was turned on are read with repository.encryption.readUnencrypted: true (--read-unencrypted on the command line)',
        'otherwise something other than Lifeboat wrote it: do not trust it',
      ],
      details: { object: w.key },
    },
  );
}

/** A whole object, sealed. */
export function sealBuffer(plain: Buffer, ring: KeyRing, w: Where): Buffer {
  const s = new Sealer(ring, w);
  // One buffer of the sealed size, written in place: no copy of the whole
  // object to join the chunks (archive-push seals each segment in a fresh process).
  const out = Buffer.allocUnsafe(sealedSize(plain.length));
  let at = s.header.copy(out, 0);
  let off = 0;
  for (; plain.length - off >= CHUNK_BYTES; off += CHUNK_BYTES)
    at = s.sealInto(plain.subarray(off, off + CHUNK_BYTES), false, out, at);
  at = s.sealInto(plain.subarray(off), true, out, at);
  if (at !== out.length) throw new Error(`sealBuffer: wrote ${at} of ${out.length} bytes`);
  return out;
}

/**
 * A stream, sealed as it is read, a chunk at a time. The key is read before
 * the first byte, so a missing key fails the put before anything is stored.
 */
export function sealStream(source: AsyncIterable<Buffer | string>, ring: KeyRing, w: Where): Readable {
  const s = new Sealer(ring, w);
  async function* sealed(): AsyncGenerator<Buffer> {
    yield s.header;
    let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let fill = 0;
    for await (const piece of source) {
      let data = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
      while (data.length > 0) {
        const n = data.copy(chunk, fill);
        fill += n;
        data = data.subarray(n);
        if (fill === CHUNK_BYTES) {
          yield s.seal(chunk, false);
          chunk = Buffer.allocUnsafe(CHUNK_BYTES);
          fill = 0;
        }
      }
    }
    yield s.seal(chunk.subarray(0, fill), true);
  }
  return Readable.from(sealed(), { objectMode: false, highWaterMark: CHUNK_BYTES });
}

/** One line of an append-only log, sealed on its own (without the newline the store adds). */
export function sealLine(line: string, ring: KeyRing, w: Where): string {
  const text = line.endsWith('\n') ? line : `${line}\n`;
  return LINE_PREFIX + sealBuffer(Buffer.from(text), ring, w).toString('base64');
}

function looksLikeLog(stored: Buffer, ring: KeyRing): boolean {
  if (stored.subarray(0, LINE_PREFIX.length).toString('latin1') === LINE_PREFIX) return true;
  return ring.readUnencrypted && stored.includes(`\n${LINE_PREFIX}`);
}

function openLog(stored: Buffer, ring: KeyRing, w: Where): Buffer {
  const out: Buffer[] = [];
  const lines = stored.toString('latin1').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line.startsWith(LINE_PREFIX)) {
      out.push(openSealed(Buffer.from(line.slice(LINE_PREFIX.length), 'base64'), ring, w));
    } else if (ring.readUnencrypted) {
      out.push(Buffer.from(`${line}\n`, 'latin1'));
    } else {
      throw damaged(w, undefined, `has a line that is not encrypted (line ${i + 1})`);
    }
  });
  return Buffer.concat(out);
}

function openSealed(stored: Buffer, ring: KeyRing, w: Where): Buffer {
  const o = new Opener(parseHeader(stored, w), ring, w);
  const step = CHUNK_BYTES + TAG_BYTES;
  // Every chunk has its tag: the plaintext is at most this long (exact unless the object was cut short).
  const out = Buffer.allocUnsafe(
    Math.max(0, stored.length - HEADER_BYTES - TAG_BYTES * Math.ceil((stored.length - HEADER_BYTES) / step)),
  );
  let at = 0;
  let off = HEADER_BYTES;
  // A full-size chunk is never the last: more must follow it.
  for (; stored.length - off > step; off += step) at = o.openInto(stored.subarray(off, off + step), false, out, at);
  if (stored.length - off === step)
    throw damaged(w, o.keyId, `is cut short: it ends after ${o.index + 1} full chunks, without its last chunk`);
  at = o.openInto(stored.subarray(off), true, out, at);
  return out.subarray(0, at);
}

/** A whole stored object, opened: a sealed object, a sealed log, or (readUnencrypted) a plaintext one. */
export function openBuffer(stored: Buffer, ring: KeyRing, w: Where): Buffer {
  if (hasMagic(stored)) return openSealed(stored, ring, w);
  if (looksLikeLog(stored, ring)) return openLog(stored, ring, w);
  if (ring.readUnencrypted) return stored;
  throw notSealed(w);
}

/**
 * A stored stream, opened as it is read. The header is read and the key
 * checked before this returns, so a wrong or missing key fails here, before
 * the caller has written anything; a damaged chunk fails the stream before
 * any of its bytes come out.
 */
export async function openStream(source: Readable, ring: KeyRing, w: Where): Promise<Readable> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const pending: Buffer[] = [];
  let have = 0;
  const pull = async (): Promise<boolean> => {
    const r = await it.next();
    if (r.done) return false;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    pending.push(b);
    have += b.length;
    return true;
  };
  try {
    while (have < HEADER_BYTES && (await pull()));
  } catch (err) {
    source.destroy();
    throw err;
  }
  let head = Buffer.concat(pending);
  if (!hasMagic(head)) {
    if (looksLikeLog(head, ring)) {
      // Logs are small: read whole, then opened line by line.
      while (await pull());
      return Readable.from([openBuffer(Buffer.concat(pending), ring, w)], { objectMode: false });
    }
    if (ring.readUnencrypted) return Readable.from(rest(head), { objectMode: false });
    source.destroy();
    throw notSealed(w);
  }
  let opener: Opener;
  try {
    opener = new Opener(parseHeader(head, w), ring, w);
  } catch (err) {
    source.destroy();
    throw err;
  }
  head = head.subarray(HEADER_BYTES);
  const step = CHUNK_BYTES + TAG_BYTES;
  async function* rest(first: Buffer): AsyncGenerator<Buffer> {
    yield first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
  }
  async function* opened(): AsyncGenerator<Buffer> {
    let buf = head;
    const parts: Buffer[] = [];
    let size = buf.length;
    for (;;) {
      // A full chunk is known not to be the last once one more byte is there.
      while (size > step) {
        if (parts.length > 0) {
          buf = Buffer.concat([buf, ...parts]);
          parts.length = 0;
        }
        yield opener.open(buf.subarray(0, step), false);
        buf = buf.subarray(step);
        size = buf.length;
      }
      const r = await it.next();
      if (r.done) break;
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      parts.push(b);
      size += b.length;
    }
    if (parts.length > 0) buf = Buffer.concat([buf, ...parts]);
    if (buf.length === step)
      throw damaged(
        w,
        opener.keyId,
        `is cut short: it ends after ${opener.index + 1} full chunks, without its last chunk`,
      );
    yield opener.open(buf, true);
  }
  const out = Readable.from(opened(), { objectMode: false, highWaterMark: CHUNK_BYTES });
  // Destroyed early (a failed extraction): stop reading the store too.
  out.once('close', () => source.destroy());
  return out;
}
