// The file system work of the file:// repository (src/repository/file.ts):
// the checksum sidecar beside each object, temporary files written whole
// and fsynced, directory fsync, and handing what root creates to the owner
// of the directory it was created in (archive-push runs as postgres).
import type { Readable } from 'node:stream';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { PutOptions } from './types';

export const SIDECAR = '.sha256';
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/** A temporary file with `body`, fsynced; root hands it to the directory's owner. */
export async function writeTemp(
  tmp: string,
  body: Buffer | Readable,
  onProgress?: (bytes: number) => void,
): Promise<void> {
  const handle = await fs.open(tmp, 'wx', 0o666);
  try {
    if (IS_ROOT) await giveToDirOwner(handle, path.dirname(tmp));
    if (Buffer.isBuffer(body)) {
      await handle.writeFile(body);
      onProgress?.(body.length);
    } else {
      let written = 0;
      for await (const chunk of body) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        await handle.write(buf);
        written += buf.length;
        onProgress?.(written);
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function giveToDirOwner(handle: fs.FileHandle, dir: string): Promise<void> {
  const st = await fs.stat(dir);
  if (st.uid !== 0 || st.gid !== 0) await handle.chown(st.uid, st.gid);
}

/**
 * The sidecar: the sha256 on the first line, then `name=value` lines
 * (`restore-points=<n>` for WAL segments). Readers older than the second
 * line take such a sidecar for one without a checksum and refuse to serve
 * the object: the safe direction.
 */
export function sidecarText(opts: Pick<PutOptions, 'sha256' | 'restorePoints'>): string {
  return `${opts.sha256}\n${opts.restorePoints !== undefined ? `restore-points=${opts.restorePoints}\n` : ''}`;
}

export async function readSidecarFields(
  file: string,
): Promise<{ sha256?: string; restorePoints?: number } | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file + SIDECAR, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  const [first = '', ...rest] = text.split('\n');
  const sha256 = first.trim();
  const count = rest.map((l) => /^restore-points=(\d+)$/.exec(l.trim())).find((m) => m)?.[1];
  return {
    ...(/^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
    ...(count !== undefined ? { restorePoints: Number(count) } : {}),
  };
}

export async function readSidecar(file: string): Promise<string | undefined> {
  return (await readSidecarFields(file))?.sha256;
}

export async function chownLikeParent(dir: string): Promise<void> {
  const st = await fs.stat(path.dirname(dir));
  if (st.uid !== 0 || st.gid !== 0) await fs.chown(dir, st.uid, st.gid);
}

/** A new name is durable only once its directory entry is on disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
