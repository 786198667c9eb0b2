// The file:// repository: a directory tree, one file per object, with the
// sha256 of each object's original content in a sidecar `<key>.sha256`.
//
// Writes are atomic: data goes to a temporary name in the final directory,
// is fsynced, and only then appears under its key (link for create-only,
// rename otherwise). The sidecar is in place before the object appears, so a
// visible object always has its checksum.
//
// Ownership: archive-push runs as the `postgres` OS user, the worker and most
// commands as root. When root creates a directory or file here, it hands it
// to the owner of the directory it was created in, so a repository whose
// root belongs to postgres stays writable by postgres whoever wrote first.
// The sidecar, temporary files and fsync are in file-io.ts.
import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { LifeboatError } from '../errors';
import {
  chownLikeParent,
  fsyncDir,
  giveToDirOwner,
  isCode,
  IS_ROOT,
  readSidecar,
  readSidecarFields,
  SIDECAR,
  sidecarText,
  writeTemp,
} from './file-io';
import type { ObjectInfo, PutOptions, PutResult, Repository } from './types';

const TEMP_PREFIX = '.lifeboat-tmp-';
/** How long a writer that has claimed a key may take to make the object appear. */
const CLAIM_WAIT_MS = 5_000;

export class FileRepository implements Repository {
  readonly url: string;
  readonly root: string;

  constructor(url: string) {
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch (err) {
      throw new LifeboatError('REPOSITORY_INVALID', `not a file:// repository URL: ${JSON.stringify(url)}`, {
        hints: ['use file:///absolute/path'],
        cause: err,
      });
    }
    if (!path.isAbsolute(root)) {
      throw new LifeboatError(
        'REPOSITORY_INVALID',
        `file:// repository path must be absolute: ${JSON.stringify(url)}`,
        {
          hints: ['use file:///absolute/path (three slashes)'],
        },
      );
    }
    this.root = path.resolve(root);
    this.url = `file://${this.root}`;
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<PutResult> {
    const file = this.pathOf(key);
    if (opts.ifAbsent) {
      // Cheap answer for the common re-push, without writing anything.
      const existing = await this.head(key);
      if (existing) return { written: false, existing };
    }
    const dir = path.dirname(file);
    const tmpData = this.tempPath(dir, file);
    const tmpSum = this.tempPath(dir, file + SIDECAR);
    try {
      await this.ensureDir(dir);
      await writeTemp(tmpData, body, opts.onProgress);
      await writeTemp(tmpSum, Buffer.from(sidecarText(opts)));
      if (opts.ifAbsent) {
        const claimed = await this.claim(key, file, tmpSum, opts.sha256);
        if (!claimed.ok) return { written: false, existing: claimed.existing };
        try {
          await fs.link(tmpData, file);
        } catch (err) {
          // Only a writer with the same checksum gets here (see claim): the
          // object that beat us has our content.
          if (!isCode(err, 'EEXIST')) throw err;
        }
      } else {
        await fs.rename(tmpSum, file + SIDECAR);
        await fs.rename(tmpData, file);
      }
      await fsyncDir(dir);
      return { written: true };
    } catch (err) {
      throw this.ioError('write', key, err);
    } finally {
      await Promise.all([fs.rm(tmpData, { force: true }), fs.rm(tmpSum, { force: true })]);
    }
  }

  /** The object's file opened for reading; undefined when absent (and the repository is there). */
  private async openForRead(key: string): Promise<{ file: string; handle: fs.FileHandle } | undefined> {
    const file = this.pathOf(key);
    try {
      return { file, handle: await fs.open(file, 'r') };
    } catch (err) {
      if (isCode(err, 'ENOENT')) return this.absent(key);
      throw this.ioError('read', key, err);
    }
  }

  async get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | undefined> {
    const opened = await this.openForRead(key);
    if (!opened) return undefined;
    const { file, handle } = opened;
    try {
      const [body, st] = await Promise.all([handle.readFile(), handle.stat()]);
      return { body, info: await this.infoOf(key, file, st) };
    } catch (err) {
      throw this.ioError('read', key, err);
    } finally {
      await handle.close();
    }
  }

  async getStream(key: string): Promise<{ stream: Readable; info: ObjectInfo } | undefined> {
    const opened = await this.openForRead(key);
    if (!opened) return undefined;
    const { file, handle } = opened;
    try {
      const info = await this.infoOf(key, file, await handle.stat());
      return { stream: handle.createReadStream(), info };
    } catch (err) {
      await handle.close();
      throw this.ioError('read', key, err);
    }
  }

  async openLocal(key: string): Promise<{ handle: fs.FileHandle; info: ObjectInfo } | undefined> {
    const opened = await this.openForRead(key);
    if (!opened) return undefined;
    try {
      return { handle: opened.handle, info: await this.infoOf(key, opened.file, await opened.handle.stat()) };
    } catch (err) {
      await opened.handle.close();
      throw this.ioError('read', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    try {
      return await this.infoOf(key, file, await fs.stat(file));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return this.absent(key);
      throw this.ioError('read', key, err);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // A prefix may end inside a name ("c/wal/00000001"): walk the directory
    // that holds it and filter.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const start = dirKey === '' ? this.root : this.pathOf(dirKey);
    const found: { key: string; file: string }[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return;
        throw this.ioError('list', keyPrefix || '/', err);
      }
      for (const e of entries) {
        if (e.name.startsWith(TEMP_PREFIX) || e.name.endsWith(SIDECAR)) continue;
        const key = keyPrefix + e.name;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path.join(dir, e.name), `${key}/`);
        } else if (e.isFile() && key.startsWith(prefix)) {
          found.push({ key, file: path.join(dir, e.name) });
        }
      }
    };
    await walk(start, dirKey === '' ? '' : `${dirKey}/`);
    if (found.length === 0) await this.absent(prefix);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const infos: ObjectInfo[] = [];
    // Bounded fan-out: a WAL directory can hold tens of thousands of files.
    for (let i = 0; i < found.length; i += 64) {
      const batch = found.slice(i, i + 64).map(async ({ key, file }) => {
        try {
          return await this.infoOf(key, file, await fs.stat(file));
        } catch (err) {
          if (isCode(err, 'ENOENT')) return undefined; // deleted while listing
          throw this.ioError('list', key, err);
        }
      });
      for (const info of await Promise.all(batch)) if (info) infos.push(info);
    }
    return infos;
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      const file = this.pathOf(key);
      try {
        // Object first, then its checksum: a visible object always has one.
        await fs.rm(file, { force: true });
        await fs.rm(file + SIDECAR, { force: true });
      } catch (err) {
        throw this.ioError('delete', key, err);
      }
    }
  }

  async append(key: string, line: string): Promise<void> {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    try {
      await this.ensureDir(dir);
      // O_APPEND: concurrent appenders never overwrite each other's lines.
      const handle = await fs.open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, 0o666);
      try {
        if (IS_ROOT) await giveToDirOwner(handle, dir);
        await handle.write(line.endsWith('\n') ? line : `${line}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw this.ioError('append to', key, err);
    }
  }

  /**
   * An absent object is a fact only if the repository itself is there: an
   * unmounted volume must not read as "end of the WAL archive", or recovery
   * would stop early and promote.
   */
  private async absent(key: string): Promise<undefined> {
    try {
      if ((await fs.stat(this.root)).isDirectory()) return undefined;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw this.ioError('read', key, err);
    }
    throw this.missingRoot();
  }

  private missingRoot(): LifeboatError {
    return new LifeboatError('REPOSITORY_UNREACHABLE', `the repository directory ${this.root} does not exist`, {
      hints: [
        'check that the volume holding it is mounted',
        `a new repository is created by hand, so that an unmounted volume is never mistaken for an empty one: mkdir -p ${this.root} && chown postgres ${this.root}`,
      ],
    });
  }

  /** Absolute path of a key; refuses keys that could leave the repository. */
  private pathOf(key: string): string {
    const parts = key.split('/');
    if (
      key === '' ||
      key.includes('\0') ||
      parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith(TEMP_PREFIX)) ||
      key.endsWith(SIDECAR)
    ) {
      throw new LifeboatError('INPUT_INVALID', `invalid repository key ${JSON.stringify(key)}`, {
        hints: [`keys are relative '/'-separated paths without '.' or '..' parts and not ending in ${SIDECAR}`],
      });
    }
    return path.join(this.root, ...parts);
  }

  private tempPath(dir: string, file: string): string {
    return path.join(dir, `${TEMP_PREFIX}${path.basename(file)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  private async infoOf(key: string, file: string, st: Stats): Promise<ObjectInfo> {
    const side = await readSidecarFields(file);
    return {
      key,
      size: st.size,
      lastModified: st.mtime,
      ...(side?.sha256 ? { sha256: side.sha256 } : {}),
      ...(side?.restorePoints !== undefined ? { restorePoints: side.restorePoints } : {}),
    };
  }

  /**
   * Create-only claim of a key: the sidecar is linked in first (link fails
   * with EEXIST when the name is taken), so of two writers racing for one
   * key only one gets its checksum recorded. A writer with the same checksum
   * may go on (same content, e.g. a retry after a crash between the two
   * links); one with a different checksum gets the existing object.
   */
  private async claim(
    key: string,
    file: string,
    tmpSum: string,
    sha256: string,
  ): Promise<{ ok: true } | { ok: false; existing: ObjectInfo }> {
    try {
      await fs.link(tmpSum, file + SIDECAR);
      return { ok: true };
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw err;
    }
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      const existing = await this.head(key);
      if (existing) return { ok: false, existing };
      const claimedSha = await readSidecar(file);
      if (claimedSha === sha256) return { ok: true };
      if (claimedSha === undefined) {
        // The claim was withdrawn (deleted) meanwhile: try again.
        return this.claim(key, file, tmpSum, sha256);
      }
      if (Date.now() > deadline) {
        throw new LifeboatError(
          'ARCHIVE_CONFLICT',
          `${this.url}: ${key} is claimed by a writer with different content (sha256 ${claimedSha}) that has not finished`,
          {
            hints: [
              'another process may be writing this key right now; check that two clusters do not share a repository and cluster name',
              `if no other writer exists (it crashed), remove ${file + SIDECAR} and retry`,
            ],
          },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** mkdir -p below the root, handing each directory root creates to its parent's owner. */
  private async ensureDir(dir: string): Promise<void> {
    if (dir === this.root) {
      if (
        !(await fs.stat(dir).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      )
        throw this.missingRoot();
      return;
    }
    try {
      await fs.mkdir(dir, { mode: 0o777 });
      if (IS_ROOT) await chownLikeParent(dir);
      return;
    } catch (err) {
      if (isCode(err, 'EEXIST')) return;
      if (!isCode(err, 'ENOENT')) throw err;
    }
    await this.ensureDir(path.dirname(dir));
    await this.ensureDir(dir);
  }

  private ioError(what: string, key: string, err: unknown): Error {
    if (err instanceof LifeboatError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const hints =
      code === 'EACCES' || code === 'EPERM'
        ? [
            `the repository directory ${this.root} must be writable by every user that runs lifeboat (archive-push runs as the PostgreSQL OS user)`,
            `e.g. chown -R postgres ${this.root}`,
          ]
        : code === 'ENOSPC'
          ? [`the file system holding ${this.root} is full`]
          : [`check that ${this.root} exists and is mounted`];
    return new LifeboatError(
      'REPOSITORY_UNREACHABLE',
      `cannot ${what} ${key} in ${this.url}: ${(err as Error).message}`,
      {
        hints,
        cause: err,
      },
    );
  }
}
