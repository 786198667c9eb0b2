// A copy of the warm standby in another directory: a recovery took it over
// (./adopt.ts), or a drill cloned it (src/drill/from-standby.ts). It is
// marked as the run's (state 'extracted', its result naming the standby as
// source): replay-wal then writes its own recovery settings and signal file
// and starts the postmaster, exactly as after a restore from a backup.
//
// It starts with the standby's postgresql.auto.conf. On Lifeboat's own
// engine nothing there names the directory. pgBackRest's restore wrote the
// standby's restore_command with --pg1-path=<the standby's directory>,
// outside Lifeboat's block, where replay-wal reads it again
// (src/restore/engine-replay.ts). pgbackrest archive-get reads pg_control at
// pg1-path and writes the segment to %p (pg_wal/RECOVERYXLOG, relative)
// under it: left as it is, a clone would fetch WAL into the running
// standby's pg_wal, and a taken-over copy would find no cluster at the old
// path. So the copy's own directory goes in. A recovery's copy, the next
// primary, also gets the archive settings a copy pgBackRest restored for a
// recovery has (archive-push with its own --pg1-path:
// src/engine/pgbackrest/engine.ts archiveSettings); a drill's never
// archives (its block says so).
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { openEngine, PgBackRestEngine } from '../engine';
import { LifeboatError } from '../errors';
import type { RestoreResult, StandbySource } from '../recovery/contract';
import { writeMarker, type RestoreMarker } from '../restore/marker';
import { BLOCK_BEGIN, BLOCK_END } from '../restore/recovery-conf';
import type { RestoreSite } from '../restore/site';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import { writeOwnedFile } from '../restore/os-user';

/** What marks the archive settings appended for a promoted copy (as the engine's restore marks them). */
const COPY_COMMENT = "# Lifeboat: this copy's own settings";

/** Paths pgBackRest's command line carries unquoted (no shell or SQL quoting needed). */
const PLAIN_PATH = /^\/[A-Za-z0-9_@%+=:,./-]*$/;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `text` (a postgresql.auto.conf) with the engine's restore_command outside
 * Lifeboat's block pointed from `from` to `to` (--pg1-path), and `archive`
 * inserted before the block unless already there. Undefined when no such
 * restore_command names either directory: the copy cannot be pointed at itself.
 */
export function withCopyDirectory(text: string, from: string, to: string, archive: string[] = []): string | undefined {
  const pg1 = `--pg1-path=(${escapeRe(from)}|${escapeRe(to)})(?=[\\s"']|$)`;
  const out: string[] = [];
  let inBlock = false;
  let pointed = false;
  let blockAt = -1;
  for (const line of text.replace(/\n$/, '').split('\n')) {
    if (line.trim() === BLOCK_BEGIN) {
      inBlock = true;
      blockAt = out.length;
    } else if (line.trim() === BLOCK_END) inBlock = false;
    else if (!inBlock && /^\s*restore_command\s*=/.test(line) && new RegExp(pg1).test(line)) {
      pointed = true;
      out.push(line.replace(new RegExp(pg1, 'g'), `--pg1-path=${to}`));
      continue;
    }
    out.push(line);
  }
  if (!pointed) return undefined;
  const outside = out.filter((_, i) => blockAt < 0 || i < blockAt);
  const missing = archive.length > 0 && !archive.every((l) => outside.includes(l));
  if (missing) out.splice(blockAt < 0 ? out.length : blockAt, 0, COPY_COMMENT, ...archive);
  return `${out.join('\n')}\n`;
}

/**
 * Why the standby's settings cannot be carried into a copy in `to`, or
 * undefined when they can (always on Lifeboat's own engine). Reads only:
 * asked before the standby is taken over or cloned.
 */
export async function copyDirectoryProblem(
  runbook: Runbook,
  standbyDir: string,
  to: string,
): Promise<string | undefined> {
  if (engineSetting(runbook).kind === 'lifeboat') return undefined;
  if (!PLAIN_PATH.test(to))
    return `${to} has characters pgBackRest's restore_command would need quoted for (only letters, digits and _@%+=:,./- are carried over)`;
  const text = await readFile(path.join(standbyDir, 'postgresql.auto.conf'), 'utf8').catch(() => '');
  if (withCopyDirectory(text, standbyDir, to) === undefined)
    return `the standby's postgresql.auto.conf has no restore_command with --pg1-path=${standbyDir} outside Lifeboat's block (pgBackRest's restore writes one): a copy elsewhere could not fetch WAL for itself`;
  return undefined;
}

/**
 * Points the copy in `dataDir`, made from the standby in `from`, at itself:
 * the engine's restore_command, and with `archive` its archive settings (a
 * recovery's copy). Nothing on Lifeboat's own engine. Run twice: the same file.
 */
export async function pointCopyAtItself(
  runbook: Runbook,
  dataDir: string,
  from: string,
  opts: { archive: boolean },
): Promise<void> {
  if (engineSetting(runbook).kind === 'lifeboat') return;
  const engine = await openEngine(runbook);
  const file = path.join(dataDir, 'postgresql.auto.conf');
  const text = await readFile(file, 'utf8');
  const archive = opts.archive && engine instanceof PgBackRestEngine ? engine.archiveSettings(dataDir) : [];
  const next = withCopyDirectory(text, from, dataDir, archive);
  if (next === undefined) {
    throw new LifeboatError(
      'TOOL_FAILED',
      `${file} has no restore_command with --pg1-path=${from} or ${dataDir} outside Lifeboat's block: this copy of the standby cannot fetch WAL for itself`,
      {
        hints: [
          `${engine.label}: its restore writes that restore_command; was the file edited by hand?`,
          'nothing was started on this copy',
        ],
      },
    );
  }
  if (next !== text) await writeOwnedFile(file, next, runbook.cluster.osUser);
}

export interface StandbyCopy {
  /** Where the copy is: restore.dataDir (taken over) or drill.dataDir (cloned). */
  site: RestoreSite;
  run: Pick<RestoreMarker, 'workflowId' | 'runId' | 'mode'>;
  /** The standby's base backup, and what replay measures against. */
  backupId: string;
  backup: RestoreMarker['backup'];
  bytes: number;
  files: number;
  movedAside?: string;
  source: StandbySource;
}

/** Writes the run's marker into the copy; the result restore-base-backup returns. */
export async function markStandbyCopy(c: StandbyCopy): Promise<RestoreResult> {
  const result: RestoreResult = {
    dataDir: c.site.dataDir,
    port: c.site.port,
    ...(c.movedAside ? { movedAside: c.movedAside } : {}),
    bytes: c.bytes,
    files: c.files,
    finishedAt: new Date().toISOString(),
    standby: c.source,
  };
  const marker: RestoreMarker = {
    ...c.run,
    backupId: c.backupId,
    state: 'extracted',
    at: result.finishedAt,
    ...(c.site.instance === 'drill' ? { instance: 'drill' as const } : {}),
    backup: c.backup,
    result,
  };
  await writeMarker(c.site.dataDir, marker, c.site.pg.osUser);
  return result;
}
