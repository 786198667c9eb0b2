// Room on the restore host's volume: what a full disk looks like to an
// operator (DISK_FULL with the path, the bytes needed and free, and the kept
// copies they could remove), and the check that refuses a restore that
// cannot fit before anything is fenced.
//
// Lifeboat never deletes what it moved aside: those copies are an operator's
// to remove. So every DISK_FULL names them with their sizes, and the check
// counts them as the operator's choice, not as free space.
import { existsSync } from 'node:fs';
import { readdir, stat, statfs } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import type { RestoreSiteCheck, RestoreSiteInput } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { ASIDE_PREFIX } from './data-dir';
import { runAsOsUser } from './os-user';
import { restoreSite } from './site';

export interface KeptCopy {
  path: string;
  bytes: number;
}

export interface Room {
  /** The directory whose file system was measured: dataDir, or its nearest existing parent. */
  measured: string;
  freeBytes: number;
  dev: number;
}

/** Free bytes (for an unprivileged writer: f_bavail) of the file system that holds p or would hold it. */
export async function roomAt(p: string): Promise<Room> {
  let dir = path.resolve(p);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const [fs, st] = await Promise.all([statfs(dir), stat(dir)]);
  return { measured: dir, freeBytes: fs.bavail * fs.bsize, dev: st.dev };
}

/**
 * Copies Lifeboat kept on the volume of dataDir: siblings moved aside
 * (`<dataDir>.lifeboat-*` directories) and `.lifeboat-aside-*` subdirectories
 * of a mount point, each with the bytes it occupies (du as the OS user, who
 * owns them). Only those on the same file system: a sibling of a mount point
 * frees nothing on it.
 */
export async function keptCopies(dataDir: string, osUser: string, dev?: number): Promise<KeptCopy[]> {
  const parent = path.dirname(dataDir);
  const base = path.basename(dataDir);
  const candidates: string[] = [];
  for (const e of await readdir(parent).catch(() => [] as string[])) {
    if (e.startsWith(`${base}.lifeboat-`)) candidates.push(path.join(parent, e));
  }
  for (const e of await readdir(dataDir).catch(() => [] as string[])) {
    if (e.startsWith(ASIDE_PREFIX)) candidates.push(path.join(dataDir, e));
  }
  const dirs: string[] = [];
  for (const c of candidates.sort()) {
    const st = await stat(c).catch(() => undefined);
    if (st?.isDirectory() && (dev === undefined || st.dev === dev)) dirs.push(c);
  }
  if (dirs.length === 0) return [];
  // -x: one file system; -B1: bytes as allocated, which is what frees when removed.
  const r = await runAsOsUser(osUser, 'du', ['-s', '-x', '-B1', ...dirs]);
  const sizes = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+)\t(.+)$/.exec(line);
    if (m) sizes.set(m[2]!, Number(m[1]));
  }
  return dirs.map((d) => ({ path: d, bytes: sizes.get(d) ?? 0 }));
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function bytesWords(n: number): string {
  return `${n} bytes (${formatBytes(n)})`;
}

/** The hint that names the kept copies, or says there are none. */
export function keptHint(kept: KeptCopy[]): string {
  if (kept.length === 0) return 'no copies moved aside by Lifeboat are on that file system';
  const total = kept.reduce((a, k) => a + k.bytes, 0);
  return `copies moved aside by Lifeboat on that file system, ${formatBytes(total)} in all, which an operator may remove once no longer needed (Lifeboat never does): ${kept.map((k) => `${k.path} (${formatBytes(k.bytes)})`).join(', ')}`;
}

/** ENOSPC anywhere in err, its causes, or the text of a tool's message. */
export function isNoSpace(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return true;
    if (isLifeboatError(e) && e.code === 'DISK_FULL') return true;
    if (e instanceof Error && /No space left on device|ENOSPC/i.test(e.message)) return true;
  }
  return false;
}

/** The path an ENOSPC names (fs errors carry one), else undefined. */
function errnoPath(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    const p = (e as NodeJS.ErrnoException).path;
    if (typeof p === 'string') return p;
  }
  return undefined;
}

export interface DiskFullInput {
  /** "restore.dataDir" or "drill.dataDir". */
  field: string;
  dataDir: string;
  osUser: string;
  /** What was being done: "extracting backup B". */
  what: string;
  neededBytes: number;
  /** The workflow, for the retry command. */
  workflowId: string;
  err: unknown;
}

/** DISK_FULL for a failure that ran out of space: the path, needed and free bytes, the kept copies, and what to do. */
export async function diskFullError(input: DiskFullInput): Promise<LifeboatError> {
  const at = errnoPath(input.err) ?? input.dataDir;
  const dd = path.resolve(input.dataDir);
  const onDataDir = path.resolve(at) === dd || path.resolve(at).startsWith(`${dd}/`);
  const room = await roomAt(onDataDir ? input.dataDir : at).catch(() => undefined);
  const kept = onDataDir ? await keptCopies(input.dataDir, input.osUser, room?.dev).catch(() => []) : [];
  const free = room
    ? `the file system of ${room.measured} has ${bytesWords(room.freeBytes)} free`
    : 'its free space could not be read';
  const first = isLifeboatError(input.err) ? input.err.what.split('\n')[0]! : errorMessage(input.err).split('\n')[0]!;
  return new LifeboatError(
    'DISK_FULL',
    `no space left on device at ${at} while ${input.what} into ${input.field} ${input.dataDir}: ${free}${onDataDir ? `, the restore needs ${bytesWords(input.neededBytes)}` : ' (a temporary file of the restore, outside the data directory)'} (${first})`,
    {
      hints: [
        `free or grow the volume of ${onDataDir ? `${input.dataDir} until at least ${formatBytes(input.neededBytes)} are free` : at}, then retry restore-base-backup (lifeboat retry ${input.workflowId} restore-base-backup --as <you>); retrying onto the same full volume fails the same way, so it is not retried automatically`,
        ...(onDataDir
          ? [
              `the partial copy this run left in ${input.dataDir} holds only bytes from the repository: the retry removes it and extracts again`,
              keptHint(kept),
            ]
          : []),
      ],
      cause: input.err,
      details: { path: at, neededBytes: input.neededBytes, ...(room ? { freeBytes: room.freeBytes } : {}), kept },
    },
  );
}

/**
 * What replay adds on the volume, beyond the base backup: PostgreSQL keeps
 * about max_wal_size of segments in pg_wal while it replays (restartpoints
 * recycle the rest; default 1 GiB = 64 segments of 16 MiB), and the prefetch
 * spool a few more. So the WAL a chain needs counts up to 64 segments, not
 * the whole chain, which never sits on disk at once.
 */
export const WAL_SEGMENTS_ON_DISK = 64;

/**
 * checkRestoreSite: refuses (DISK_FULL) a restore that cannot fit on the
 * volume of its data directory, naming the kept copies an operator could
 * remove. Reads only: statfs, stat, du.
 */
export async function checkRestoreRoom(runbook: Runbook, input: RestoreSiteInput): Promise<RestoreSiteCheck> {
  const site = restoreSite(runbook, input.instance);
  const segSize = input.walSegmentSize ?? 16 * 1024 * 1024;
  const walBytes = Math.min(input.walSegments, WAL_SEGMENTS_ON_DISK) * segSize;
  const needed = input.backupBytes + walBytes;
  const room = await roomAt(site.dataDir);
  const kept = await keptCopies(site.dataDir, site.pg.osUser, room.dev);
  const check: RestoreSiteCheck = {
    dataDir: site.dataDir,
    measured: room.measured,
    freeBytes: room.freeBytes,
    neededBytes: needed,
    kept,
  };
  if (room.freeBytes >= needed) return check;
  throw new LifeboatError(
    'DISK_FULL',
    `${site.field}.dataDir ${site.dataDir} has no room for this restore: the file system of ${room.measured} has ${bytesWords(room.freeBytes)} free, the restore needs ${bytesWords(needed)} (backup ${input.backupId}: ${formatBytes(input.backupBytes)}, WAL during replay: ${formatBytes(walBytes)})`,
    {
      hints: [
        keptHint(kept),
        `free or grow that volume by at least ${formatBytes(needed - room.freeBytes)}, or set ${site.field}.dataDir in runbook ${runbook.name} to a larger volume, then start the run again`,
        'nothing was fenced, moved or written: this check only reads',
      ],
      details: { path: site.dataDir, neededBytes: needed, freeBytes: room.freeBytes, kept },
    },
  );
}
