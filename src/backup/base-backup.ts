// Takes a verified base backup of a runbook's primary into its repository:
//   1. pg_basebackup in plain format (with the WAL it needs, -X stream) into a
//      scratch directory on this host;
//   2. pg_verifybackup against the manifest pg_basebackup wrote: a backup
//      that does not verify never reaches the repository;
//   3. tar + zstd into parts of about 128 MiB (src/backup/parts.ts), packed
//      in parallel: few enough objects for a fast S3 restore, enough for a
//      restore to extract one per core; the sha256 of each part's tar and of
//      its stored bytes recorded;
//   4. upload the parts, backup_manifest, and backup.json last: its
//      presence is what makes a backup count in the catalog.
// PostgreSQL 15's pg_verifybackup reads plain-format backups only, hence
// plain format then our own tar, rather than pg_basebackup -Ft.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readlink, rename, rm, unlink } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { primaryClientConfig, primaryLibpqEnv } from '../pg/connect';
import { clusterName, type Runbook } from '../runbook/schema';
import { openRepository } from '../repository';
import { keys } from '../repository/layout';
import { copyToOtherRepositories } from '../repository/multi';
import type { Repository } from '../repository/types';
import { formatLsn, parseLsn, segmentName, segnoOfLsn } from '../wal/names';
import { BACKUP_META_VERSION, BASE_ARCHIVE, BackupMeta, partName, type StoredFile } from '../catalog/backup-meta';
import { recordPrivileges } from '../privileges/record';
import { defaultParallel, inParallel, listDataDir, packPart, planParts, PART_TARGET_BYTES } from './parts';
import { runTool } from './run-tool';

/** The version 1 single archive (backups taken before parts); see backup-meta.ts. */
export { BASE_ARCHIVE };
export const MANIFEST = 'backup_manifest';

export interface BackupProgress {
  phase: 'copy' | 'verify' | 'pack' | 'upload' | 'done';
  bytesDone: number;
  bytesTotal?: number;
}

export interface TakeBaseBackupOptions {
  runbook: Runbook;
  /** Where the backup is staged; default runbook backup.scratchDir or the OS temp dir. */
  scratchDir?: string;
  onProgress?: (p: BackupProgress) => void;
  /** For tests and retries: an explicit id; default from the start time. */
  backupId?: string;
  /** Tests only: bytes of data directory per part (default PART_TARGET_BYTES), to get many parts from a small cluster. */
  partBytes?: number;
  /**
   * Tests only: store the data directory the version 1 way, as one
   * base.tar.zst, to prove that backups taken before parts still restore.
   */
  singleArchive?: boolean;
}

function backupIdFor(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

async function uniqueBackupId(repo: Repository, cluster: string, wanted: string): Promise<string> {
  if (!(await repo.head(keys.backupMeta(cluster, wanted)))) {
    const existing = await repo.list(keys.backupPrefix(cluster, wanted));
    if (existing.length === 0) return wanted;
  }
  for (let i = 1; i < 100; i++) {
    const id = `${wanted}-${i}`;
    if ((await repo.list(keys.backupPrefix(cluster, id))).length === 0) return id;
  }
  throw new LifeboatError('BACKUP_FAILED', `could not find a free backup id near ${wanted}`);
}

interface PrimaryFacts {
  pgVersion: string;
  systemIdentifier: string;
  walSegmentSize: number;
  tablespaces: Tablespace[];
}

/** A tablespace outside the data directory: pg_tablespace_location is absolute (an in-place one's is relative). */
export interface Tablespace {
  oid: string;
  name: string;
  location: string;
}

/** The server's tablespaces outside its data directory (pg_tablespace is readable by every role). */
export async function readTablespaces(client: Client): Promise<Tablespace[]> {
  const { rows } = await client.query<Tablespace>(
    `select oid::text as oid, spcname as name, pg_tablespace_location(oid) as location
       from pg_tablespace where pg_tablespace_location(oid) like '/%' order by oid`,
  );
  return rows;
}

async function readPrimaryFacts(runbook: Runbook): Promise<PrimaryFacts> {
  const client = new Client(primaryClientConfig(runbook));
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string; sysid: string; seg: string }>(
      `select current_setting('server_version') as v,
              (select system_identifier::text from pg_control_system()) as sysid,
              (select setting from pg_settings where name = 'wal_segment_size') as seg`,
    );
    const r = rows[0]!;
    return {
      pgVersion: r.v,
      systemIdentifier: r.sysid,
      walSegmentSize: Number(r.seg),
      tablespaces: await readTablespaces(client),
    };
  } catch (err) {
    const p = runbook.cluster.primary;
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `cannot reach the primary ${p.user}@${p.host}:${p.port}/${p.database}: ${errorMessage(err)}`,
      {
        hints: [
          'is PostgreSQL running and reachable from this worker?',
          'does the role have REPLICATION and a pg_hba.conf replication entry?',
        ],
        cause: err,
      },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface LabelFacts {
  startLsn: string;
  timeline: number;
  startTime: string;
}

/** Reads backup_label, which pg_basebackup writes into a plain-format copy. */
export function parseBackupLabel(text: string): LabelFacts {
  const lsn = /START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/.exec(text)?.[1];
  const tli = /START TIMELINE: (\d+)/.exec(text)?.[1];
  const time = /START TIME: (.+)/.exec(text)?.[1];
  if (!lsn || !tli || !time) throw new LifeboatError('BACKUP_FAILED', `backup_label is not readable:\n${text}`);
  // "2026-11-21 19:01:02 UTC": PostgreSQL writes the server's log_timezone.
  const parsed = new Date(time.replace(' ', 'T').replace(/ (UTC|GMT)$/, 'Z'));
  return {
    startLsn: lsn,
    timeline: Number(tli),
    startTime: Number.isNaN(parsed.getTime()) ? time : parsed.toISOString(),
  };
}

/** End LSN of the backup from the manifest's WAL-Ranges (the last range ends where the backup ends). */
export function manifestEndLsn(manifestText: string): { endLsn: string; endTimeline: number } {
  const manifest = JSON.parse(manifestText) as { 'WAL-Ranges'?: Array<{ Timeline: number; 'End-LSN': string }> };
  const ranges = manifest['WAL-Ranges'] ?? [];
  const last = ranges[ranges.length - 1];
  if (!last) throw new LifeboatError('BACKUP_FAILED', 'backup_manifest has no WAL-Ranges');
  return { endLsn: last['End-LSN'], endTimeline: last.Timeline };
}

export async function takeBaseBackup(opts: TakeBaseBackupOptions): Promise<BackupMeta> {
  const { runbook } = opts;
  const cluster = clusterName(runbook);
  const bin = runbook.cluster.pgBin;
  const progress = opts.onProgress ?? (() => undefined);
  const repo = await openRepository(runbook.repository.url, { ...runbook.repository, role: 'backup' });
  // An encrypted repository's key is read now, not after minutes of copying and packing.
  (repo as { checkWriteKey?: () => void }).checkWriteKey?.();
  const facts = await readPrimaryFacts(runbook);
  // Before the copy starts: the catalog pg_basebackup copies is the one a
  // restored copy will run with, so what the role may do in it is recorded
  // with the backup (src/privileges/record.ts). Grants made during the copy
  // may or may not be in it; the record errs on the side of "missing".
  const privileges = await recordPrivileges(runbook);
  const started = new Date();
  const backupId = await uniqueBackupId(repo, cluster, opts.backupId ?? backupIdFor(started));
  const scratchRoot = opts.scratchDir ?? runbook.backup.scratchDir ?? path.join(os.tmpdir(), 'lifeboat-backup');
  // A directory named after the backup id that this call creates: provably ours to remove afterwards.
  const work = path.join(scratchRoot, `${cluster}-${backupId}`);
  const dataDir = path.join(work, 'data');
  await mkdir(scratchRoot, { recursive: true });
  await mkdir(work, { recursive: false }).catch((err: NodeJS.ErrnoException) => {
    throw new LifeboatError('DATA_DIR_NOT_EMPTY', `scratch directory ${work} already exists`, {
      hints: ['another backup with this id may be running on this host; it is left untouched'],
      cause: err,
    });
  });
  try {
    const label = `lifeboat ${cluster} ${backupId}`;
    await runTool(
      `${bin}/pg_basebackup`,
      [
        '-D',
        dataDir,
        '-Fp',
        '-X',
        'stream',
        '-c',
        'fast',
        '-l',
        label,
        '--manifest-checksums=SHA256',
        '-P',
        // A plain copy writes each tablespace at its own path: on the primary's host that is the primary's.
        ...facts.tablespaces.map((t) => tablespaceMapping(t, work)),
      ],
      {
        env: primaryLibpqEnv(runbook),
        what: 'pg_basebackup',
        hints: ['does the role have REPLICATION, and does pg_hba.conf allow a replication connection from this host?'],
        onStderr: (text) => {
          // -P writes "  1234/56789 kB (2%), 0/1 tablespace" lines ending in \r.
          const m = /(\d+)\/(\d+) kB/.exec(text.split('\r').filter(Boolean).pop() ?? '');
          if (m) progress({ phase: 'copy', bytesDone: Number(m[1]) * 1024, bytesTotal: Number(m[2]) * 1024 });
        },
      },
    );
    const toolVersion = (
      await runTool(`${bin}/pg_basebackup`, ['--version'], { what: 'pg_basebackup --version' })
    ).trim();
    const copied = new Date();

    progress({ phase: 'verify', bytesDone: 0 });
    await runTool(`${bin}/pg_verifybackup`, ['-q', dataDir], {
      what: 'pg_verifybackup',
      code: 'BACKUP_VERIFY_FAILED',
      hints: [
        "the copy did not match its manifest; nothing was stored. Run the backup again and check the host's disk",
      ],
    });
    const verifiedAt = new Date();
    await placeTablespacesInside(dataDir, work, facts.tablespaces);

    const labelFacts = parseBackupLabel(await readFile(path.join(dataDir, 'backup_label'), 'utf8'));
    const manifestText = await readFile(path.join(dataDir, MANIFEST), 'utf8');
    const { endLsn } = manifestEndLsn(manifestText);
    const seg = facts.walSegmentSize;
    const startWal = segmentName(labelFacts.timeline, segnoOfLsn(labelFacts.startLsn, seg), seg);
    // End-LSN points just past the last record: the segment holding the byte before it.
    const endWal = segmentName(labelFacts.timeline, segnoOfLsn(parseLsn(endLsn) - 1n, seg), seg);

    const manifestSha = createHash('sha256').update(manifestText).digest('hex');
    const stored = opts.singleArchive
      ? await packSingle(dataDir, work, progress)
      : await packParts(dataDir, work, opts.partBytes ?? PART_TARGET_BYTES, progress);
    const storedTotal = stored.reduce((n, f) => n + f.storedSize, 0);
    progress({ phase: 'upload', bytesDone: 0, bytesTotal: storedTotal });
    const files: StoredFile[] = [
      ...stored,
      {
        name: MANIFEST,
        storedSize: Buffer.byteLength(manifestText),
        size: Buffer.byteLength(manifestText),
        sha256: manifestSha,
        compression: 'none',
      },
    ];
    const uploaded = new Map<string, number>();
    const onUpload = () =>
      progress({
        phase: 'upload',
        bytesDone: [...uploaded.values()].reduce((a, b) => a + b, 0),
        bytesTotal: storedTotal,
      });
    // Every repository of the runbook gets the same packed files, streamed
    // from the scratch directory, the first one first (progress is its upload).
    const uploadTo = async (repo: Repository, first: boolean) => {
      // A few uploads at a time: one stream rarely fills the link to an object store.
      await inParallel(stored, 4, async (f) => {
        const key = keys.backupFile(cluster, backupId, f.name);
        await repo.put(key, createReadStream(path.join(work, f.name)), {
          sha256: f.sha256,
          ifAbsent: true,
          onProgress: (n) => {
            if (!first) return;
            uploaded.set(f.name, n);
            onUpload();
          },
        });
        const got = await repo.head(key);
        if (!got || got.size !== f.storedSize || got.sha256 !== f.sha256) {
          throw new LifeboatError(
            'BACKUP_FAILED',
            `uploaded ${f.name} of backup ${backupId} does not match what was packed`,
            {
              hints: [
                `expected ${f.storedSize} bytes with sha256 ${f.sha256}, found ${got ? `${got.size} bytes, sha256 ${got.sha256 ?? 'none'}` : 'nothing'}`,
              ],
            },
          );
        }
      });
      await repo.put(keys.backupFile(cluster, backupId, MANIFEST), Buffer.from(manifestText), {
        sha256: manifestSha,
        ifAbsent: true,
      });
    };
    await uploadTo(repo, true);

    const meta = BackupMeta.parse({
      version: opts.singleArchive ? 1 : BACKUP_META_VERSION,
      backupId,
      cluster,
      pgVersion: facts.pgVersion,
      systemIdentifier: facts.systemIdentifier,
      type: 'full',
      tool: 'pg_basebackup',
      toolVersion,
      startTime: labelFacts.startTime.includes('T') ? labelFacts.startTime : started.toISOString(),
      endTime: copied.toISOString(),
      startLsn: formatLsn(parseLsn(labelFacts.startLsn)),
      endLsn: formatLsn(parseLsn(endLsn)),
      timeline: labelFacts.timeline,
      startWal,
      endWal,
      walSegmentSize: seg,
      sizeBytes: stored.reduce((n, f) => n + f.size, 0),
      storedBytes: files.reduce((n, f) => n + f.storedSize, 0),
      files,
      manifestSha256: manifestSha,
      verifiedAt: verifiedAt.toISOString(),
      verifiedBy: 'pg_verifybackup',
      label,
      privileges,
      ...(facts.tablespaces.length > 0 ? { tablespaces: facts.tablespaces } : {}),
    });
    const metaText = `${JSON.stringify(meta, null, 2)}\n`;
    const metaSha = createHash('sha256').update(metaText).digest('hex');
    await repo.put(keys.backupMeta(cluster, backupId), Buffer.from(metaText), { sha256: metaSha, ifAbsent: true });
    // backup.json last in each: a repository without it holds an incomplete backup, never a wrong one.
    await copyToOtherRepositories(runbook, `backup ${backupId}`, async (other) => {
      await uploadTo(other, false);
      await other.put(keys.backupMeta(cluster, backupId), Buffer.from(metaText), { sha256: metaSha, ifAbsent: true });
    });
    progress({ phase: 'done', bytesDone: storedTotal, bytesTotal: storedTotal });
    return meta;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

type Progress = (p: BackupProgress) => void;

/** The data directory as parts (version 2), packed one per core at a time. */
async function packParts(dataDir: string, work: string, partBytes: number, progress: Progress): Promise<StoredFile[]> {
  const entries = await listDataDir(dataDir);
  const total = entries.reduce((n, e) => n + e.size, 0);
  const plan = planParts(entries, partBytes);
  const out: StoredFile[] = new Array<StoredFile>(plan.length);
  let done = 0;
  await inParallel([...plan.keys()], defaultParallel(), async (i) => {
    const name = partName(i);
    const p = await packPart(dataDir, plan[i], path.join(work, name), (n) => {
      done += n;
      progress({ phase: 'pack', bytesDone: done, bytesTotal: total });
    });
    out[i] = {
      name,
      storedSize: p.storedSize,
      size: p.size,
      sha256: p.sha256,
      storedSha256: p.storedSha256,
      compression: 'zstd',
    };
  });
  return out;
}

/** The data directory as one base.tar.zst (version 1): tests only, see TakeBaseBackupOptions.singleArchive. */
async function packSingle(dataDir: string, work: string, progress: Progress): Promise<StoredFile[]> {
  let done = 0;
  const p = await packPart(dataDir, undefined, path.join(work, BASE_ARCHIVE), (n) =>
    progress({ phase: 'pack', bytesDone: (done += n) }),
  );
  return [{ name: BASE_ARCHIVE, storedSize: p.storedSize, size: p.size, sha256: p.sha256, compression: 'zstd' }];
}

/** Where pg_basebackup writes a tablespace of the copy: the backup's own scratch directory. */
function tablespaceCopy(t: Tablespace, work: string): string {
  return path.join(work, 'tablespaces', t.oid);
}

/** pg_basebackup's --tablespace-mapping=OLD=NEW, an `=` in either written `\=`. */
export function tablespaceMapping(t: Tablespace, work: string): string {
  const esc = (p: string) => p.replace(/=/g, '\\=');
  return `--tablespace-mapping=${esc(t.location)}=${esc(tablespaceCopy(t, work))}`;
}

/**
 * Each tablespace's copy moved into the copied data directory, in place of
 * its link (pg_tblspc/<oid> becomes the directory itself, as an in-place
 * tablespace is): the backup holds the files, and a restored copy uses its
 * own, never the primary's location. After pg_verifybackup, which followed
 * the links.
 */
async function placeTablespacesInside(dataDir: string, work: string, tablespaces: Tablespace[]): Promise<void> {
  for (const t of tablespaces) {
    const link = path.join(dataDir, 'pg_tblspc', t.oid);
    const copy = tablespaceCopy(t, work);
    const points = await readlink(link).catch(() => undefined);
    if (points !== copy) {
      throw new LifeboatError(
        'BACKUP_FAILED',
        `tablespace ${t.name} (oid ${t.oid}, at ${t.location}) is not where the copy should have it: pg_tblspc/${t.oid} ${points ? `points to ${points}` : 'is not a link'}, expected ${copy}`,
        { hints: ['a tablespace made or dropped while the backup ran; take the backup again', 'nothing was stored'] },
      );
    }
    await unlink(link);
    await rename(copy, link);
  }
}
