// What pgBackRest says about a stanza, read from its JSON output only (never
// from its repository's files): `pgbackrest info --output=json` for the
// backups and the archive's min/max per archive id, `pgbackrest repo-ls
// --output=json` for the WAL files themselves. Pure functions over the text,
// so tests can feed them recorded output.
import { LifeboatError } from '../../errors';
import { walFileKind } from '../../wal/names';
import type { EngineBackup } from '../types';

/** One backup as `pgbackrest info --output=json` prints it (2.45; fields Lifeboat reads). */
interface InfoBackup {
  label: string;
  type: 'full' | 'diff' | 'incr';
  error?: boolean;
  prior: string | null;
  archive: { start: string | null; stop: string | null };
  lsn?: { start: string; stop: string };
  timestamp: { start: number; stop: number };
  info: { size: number; delta: number; repository: { size: number; delta: number } };
  database: { id: number; 'repo-key': number };
}

interface InfoArchive {
  id: string;
  min: string | null;
  max: string | null;
  database: { id: number; 'repo-key': number };
}

interface InfoStanza {
  name: string;
  status: { code: number; message: string; lock?: unknown };
  backup: InfoBackup[];
  archive: InfoArchive[];
  db: { id: number; 'repo-key': number; 'system-id': string; version: string }[];
  repo?: { key: number; cipher: string; status: { code: number; message: string } }[];
}

export interface StanzaInfo {
  name: string;
  status: { code: number; message: string };
  /** Good backups (pgBackRest's error flag not set), oldest first by end time. */
  backups: EngineBackup[];
  /** Backups pgBackRest flagged with errors (a page checksum error during the copy): listed, never chosen. */
  flagged: string[];
  /** The archive's oldest and newest WAL per archive id ("15-1": PostgreSQL 15, database history id 1). */
  archives: { id: string; min?: string; max?: string }[];
  /** PostgreSQL major version and system identifier, per database history id (text: it does not fit a double). */
  db: { id: number; version: string; systemId: string }[];
  /** Each repository's own status: info exits 0 when one cannot be read (TLS, keys), saying why here ("[CryptoError] ..."). */
  repos: { key: number; status: { code: number; message: string } }[];
}

/** pgBackRest status codes of `info` (its documentation, "Info command"). */
export const INFO_STATUS = { ok: 0, missingStanzaPath: 1, noValidBackups: 2, missingStanzaData: 3, other: 99 } as const;

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');

/**
 * Parses `pgbackrest info --output=json` for one stanza. The system
 * identifier is a 64-bit integer in the JSON; it is read as text, since a
 * JavaScript number would round it.
 */
export function parseInfo(json: string, stanza: string): StanzaInfo {
  let all: InfoStanza[];
  try {
    all = JSON.parse(json.replace(/("system-id"\s*:\s*)(\d+)/g, '$1"$2"')) as InfoStanza[];
  } catch (err) {
    throw new LifeboatError(
      'TOOL_FAILED',
      `pgbackrest info --output=json printed something that is not JSON: ${err instanceof Error ? err.message : String(err)}`,
      {
        hints: ['run it by hand as the PostgreSQL OS user: pgbackrest --stanza=<stanza> info --output=json'],
      },
    );
  }
  const s = all.find((x) => x.name === stanza);
  if (!s)
    throw new LifeboatError('TOOL_FAILED', `pgbackrest info --output=json says nothing about stanza ${stanza}`, {
      hints: ['is engine.stanza in the runbook the stanza in pgbackrest.conf?'],
    });
  const good = s.backup.filter((b) => !b.error);
  const backups = good
    .map((b) => backupOfInfo(b))
    .sort((a, b) => (a.endTime < b.endTime ? -1 : a.endTime > b.endTime ? 1 : a.backupId < b.backupId ? -1 : 1));
  return {
    name: s.name,
    status: { code: s.status.code, message: s.status.message },
    backups,
    flagged: s.backup.filter((b) => b.error).map((b) => b.label),
    archives: s.archive.map((a) => ({ id: a.id, ...(a.min ? { min: a.min } : {}), ...(a.max ? { max: a.max } : {}) })),
    db: s.db.map((d) => ({ id: d.id, version: d.version, systemId: String(d['system-id']) })),
    repos: (s.repo ?? []).map((r) => ({ key: r.key, status: { code: r.status.code, message: r.status.message } })),
  };
}

function backupOfInfo(b: InfoBackup): EngineBackup {
  const start = b.archive.start ?? '';
  const stop = b.archive.stop ?? start;
  return {
    backupId: b.label,
    type: b.type,
    startTime: iso(b.timestamp.start),
    endTime: iso(b.timestamp.stop),
    // pgBackRest 2.45 records both; a backup without them (very old formats) cannot be placed in the WAL.
    startLsn: b.lsn?.start ?? '0/0',
    endLsn: b.lsn?.stop ?? '0/0',
    timeline: start ? parseInt(start.slice(0, 8), 16) : 0,
    startWal: start,
    endWal: stop,
    sizeBytes: b.info.size,
    storedBytes: b.info.repository.delta,
    ...(b.prior ? { prior: b.prior } : {}),
  };
}

/** One entry of `pgbackrest repo-ls --output=json`: the name relative to the listed path. */
interface RepoLsEntry {
  type: 'file' | 'path' | 'link';
  size?: number;
  time?: number;
}

/**
 * The WAL files of `pgbackrest repo-ls --recurse --output=json archive/<stanza>/<archive id>`,
 * by the name PostgreSQL knows them: "000000010000000000000004-<sha1>.gz" is
 * segment 000000010000000000000004 (a .partial the same); history and .backup files keep their names.
 */
export function walFilesOfRepoLs(json: string): { name: string; size: number; time?: number }[] {
  const entries = JSON.parse(json) as Record<string, RepoLsEntry>;
  const out = new Map<string, { name: string; size: number; time?: number }>();
  for (const [rel, e] of Object.entries(entries)) {
    if (e.type !== 'file') continue;
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    const m = /^([0-9A-F]{24}(?:\.partial)?)-[0-9a-f]{40}(?:\.[a-z0-9]+)?$/.exec(base);
    const name = m ? m[1]! : base;
    const kind = walFileKind(name);
    if (kind !== 'segment' && kind !== 'history' && kind !== 'backup' && kind !== 'partial') continue;
    // The same segment pushed twice with different content is kept under two checksums: one name.
    if (!out.has(name)) out.set(name, { name, size: e.size ?? 0, ...(e.time !== undefined ? { time: e.time } : {}) });
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
