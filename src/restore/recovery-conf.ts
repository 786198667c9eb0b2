// The recovery settings of a restored data directory: one delimited block at
// the end of postgresql.auto.conf, replaced whole on every replay-wal, plus
// the signal file that puts PostgreSQL into recovery.
//
// postgresql.auto.conf is read after postgresql.conf and its last setting of
// a name wins, so the block overrides the primary's own port and listen
// addresses without editing the files the backup brought along.
import { lstat, readdir, rm, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Target } from '../recovery/contract';
import { chownToUser, writeOwnedFile } from './os-user';

export const BLOCK_BEGIN = '# lifeboat recovery begin';
export const BLOCK_END = '# lifeboat recovery end';
const AUTO_CONF = 'postgresql.auto.conf';

export interface RecoverySettings {
  port: number;
  listenAddress: string;
  socketDir: string;
  restoreCommand: string;
  target: Target;
  /** For the comment line: who wrote the block. */
  workflowId: string;
  /**
   * A drill copy (or a standby): never archive, never apply a subscription.
   * Promoted, it would otherwise push its new timeline's history and WAL into
   * the production repository through the primary's archive_command, and
   * recovery_target_timeline = 'latest' would make later restores follow the
   * drill's timeline; and the subscriptions in its catalog would start apply
   * workers that connect to the publishers with production's slots, taking
   * changes the production subscriber then never gets (whenever it is not
   * connected itself). max_logical_replication_workers = 0 starts none.
   */
  archiveOff?: boolean;
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Single-quotes a word for the shell restore_command runs in, when it needs it. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * An ISO 8601 time as recovery_target_time accepts it. The setting is parsed
 * when the postmaster reads its configuration, before time zone
 * abbreviations are loaded, so "Z" is refused ("invalid value for parameter")
 * where "+00:00" is not. Rewritten as text: a Date would drop microseconds.
 */
export function pgTime(iso: string): string {
  return iso.replace(/^(\d{4}-\d{2}-\d{2})T/, '$1 ').replace(/[Zz]$/, '+00:00');
}

export function recoveryLines(s: RecoverySettings): string[] {
  const t = s.target;
  const target =
    'time' in t
      ? [`recovery_target_time = ${quote(pgTime(t.time))}`]
      : 'name' in t
        ? [`recovery_target_name = ${quote(t.name)}`]
        : 'lsn' in t
          ? [`recovery_target_lsn = ${quote(t.lsn)}`]
          : 'xid' in t
            ? [`recovery_target_xid = ${quote(t.xid)}`]
            : // latest: no target; standby mode replays to the end of the archive (replay.ts).
              [];
  return [
    BLOCK_BEGIN,
    `# Written by Lifeboat for workflow ${s.workflowId}; replaced on every replay-wal.`,
    `port = ${s.port}`,
    `listen_addresses = ${quote(s.listenAddress)}`,
    `unix_socket_directories = ${quote(s.socketDir)}`,
    // Pausing needs hot_standby: without it, recovery_target_action = 'pause' acts like 'shutdown'.
    `hot_standby = on`,
    // The copy must never stream from, or clean up the archive of, whatever
    // the backed-up server followed if it was itself a standby.
    `primary_conninfo = ''`,
    `primary_slot_name = ''`,
    `archive_cleanup_command = ''`,
    `recovery_end_command = ''`,
    ...(s.archiveOff ? [`archive_mode = off`, `archive_command = ''`, `max_logical_replication_workers = 0`] : []),
    `restore_command = ${quote(s.restoreCommand)}`,
    `recovery_target_timeline = 'latest'`,
    ...target,
    `recovery_target_action = 'pause'`,
    BLOCK_END,
  ];
}

const TARGET_LINE = /^\s*recovery_target(_[a-z]+)?\s*=/;

/**
 * `existing` with Lifeboat's block replaced by `block` at the end. Target
 * settings outside the block go too: ALTER SYSTEM rewrites the file without
 * comments, and a stale recovery_target_time beside a new recovery_target_name
 * would stop PostgreSQL with "multiple recovery targets specified".
 */
export function withRecoveryBlock(existing: string, block: string[]): string {
  const kept: string[] = [];
  let inBlock = false;
  for (const line of existing.split('\n')) {
    if (line.trim() === BLOCK_BEGIN) inBlock = true;
    else if (line.trim() === BLOCK_END) inBlock = false;
    else if (!inBlock && !TARGET_LINE.test(line)) kept.push(line);
  }
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === '') kept.pop();
  return `${[...kept, ...block].join('\n')}\n`;
}

/** Writes the block into postgresql.auto.conf (atomically, owned by the OS user); true when it changed. */
export async function writeRecoveryConf(dataDir: string, settings: RecoverySettings, osUser: string): Promise<boolean> {
  return writeRecoveryBlock(dataDir, recoveryLines(settings), osUser);
}

/**
 * Writes these lines as Lifeboat's block of postgresql.auto.conf (atomically,
 * owned by the OS user); true when it changed. A copy whose tablespaces are
 * directories in pg_tblspc (a Lifeboat backup stores them so) also gets
 * allow_in_place_tablespaces: PostgreSQL 15 stops recovery at "unexpected
 * directory entry found in pg_tblspc/" without it.
 */
export async function writeRecoveryBlock(dataDir: string, lines: string[], osUser: string): Promise<boolean> {
  const file = path.join(dataDir, AUTO_CONF);
  const before = await readFile(file, 'utf8').catch(() => '');
  const inPlace = await inPlaceTablespaces(dataDir);
  const block = [...lines];
  if (inPlace.length > 0) {
    const end = block.lastIndexOf(BLOCK_END);
    block.splice(
      end < 0 ? block.length : end,
      0,
      `# tablespaces ${inPlace.join(', ')} are directories inside this data directory, not links`,
      'allow_in_place_tablespaces = on',
    );
  }
  const after = withRecoveryBlock(before, block);
  if (before === after) return false;
  await writeOwnedFile(file, after, osUser);
  return true;
}

/** The tablespaces (oids) that are directories in the data directory's pg_tblspc, not links. */
export async function inPlaceTablespaces(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, 'pg_tblspc');
  const names = await readdir(dir).catch(() => [] as string[]);
  const found: string[] = [];
  for (const n of names.sort()) if ((await lstat(path.join(dir, n))).isDirectory()) found.push(n);
  return found;
}

/**
 * recovery.signal for a target (recovery ends there and pauses), or
 * standby.signal for the end of the archive: in archive recovery with no
 * target PostgreSQL promotes by itself when restore_command finds no next
 * segment, which Lifeboat must never let happen; a standby keeps asking.
 */
export async function writeSignalFile(dataDir: string, kind: 'recovery' | 'standby', osUser: string): Promise<void> {
  const other = kind === 'recovery' ? 'standby.signal' : 'recovery.signal';
  // With both present PostgreSQL picks standby mode: remove the other first.
  await rm(path.join(dataDir, other), { force: true });
  const file = path.join(dataDir, `${kind}.signal`);
  await writeFile(file, '', { mode: 0o600 });
  await chownToUser(file, osUser);
}

export function signalKind(target: Target): 'recovery' | 'standby' {
  return 'latest' in target ? 'standby' : 'recovery';
}
