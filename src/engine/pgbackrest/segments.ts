// Archived segments of a pgBackRest stanza for pg_waldump (a drill's newest
// commit, preflight's reach check) and for the stanza's WAL segment size:
// fetched one at a time with `pgbackrest archive-get` (decompressed,
// decrypted) as the PostgreSQL OS user, into a temporary directory it owns.
// Nothing of pgBackRest's repository is read as files.
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SegmentSource } from '../../drill/newest-commit';
import { LifeboatError } from '../../errors';
import { chownToUser } from '../../restore/os-user';
import { engineSetting } from '../../runbook/engine';
import type { Runbook } from '../../runbook/schema';
import { DEFAULT_WAL_SEGMENT_SIZE, isSegmentName } from '../../wal/names';
import { segmentSizeOfFile } from '../../wal/segment-size';
import { runPgBackRest, stanzaCommand, type PgBackRestTarget } from './command';

/** archive-get's exit code for a segment the archive does not have. */
const NOT_IN_ARCHIVE = 1;

/** Segments fetched by name; the file's path, or undefined when the archive has no such segment. */
type FetchSource = Extract<SegmentSource, { fetchSegment: unknown }>;

/** Runs `fn` with the runbook's stanza's segments as a source, then removes what was fetched. */
export async function withStanzaSegments<T>(runbook: Runbook, fn: (source: FetchSource) => Promise<T>): Promise<T> {
  const setting = engineSetting(runbook);
  if (setting.kind !== 'pgbackrest') throw new Error(`runbook ${runbook.name}: engine ${setting.kind} has no stanza`);
  return withTargetSegments(
    {
      stanza: setting.stanza,
      osUser: runbook.cluster.osUser,
      ...(setting.configPath ? { configPath: setting.configPath } : {}),
      ...(setting.repo !== undefined ? { repo: setting.repo } : {}),
    },
    fn,
  );
}

/** Runs `fn` with the stanza's segments as a source, then removes what was fetched. */
export async function withTargetSegments<T>(
  target: PgBackRestTarget,
  fn: (source: FetchSource) => Promise<T>,
): Promise<T> {
  // archive-get runs as the PostgreSQL OS user: it writes into a directory of its own.
  const own = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-archive-get-'));
  try {
    await chownToUser(own, target.osUser);
    return await fn({
      fetchSegment: async (segment) => {
        const file = path.join(own, segment);
        try {
          await runPgBackRest(target, 'archive-get', [segment, file]);
          return file;
        } catch (err) {
          // Not there is an answer; any other failure (the repository unreachable, a wrong key) is not "no records".
          const code = (err as { details?: { pgbackrest?: { code?: number } } }).details?.pgbackrest?.code;
          if (code === NOT_IN_ARCHIVE) return undefined;
          throw err;
        }
      },
    });
  } finally {
    await rm(own, { recursive: true, force: true });
  }
}

/** Sizes measured in this process, by stanza, configuration, repository and archive id: an archive's never changes. */
const measured = new Map<string, number>();

/**
 * The WAL segment size of the stanza's archive `archiveId` (pgBackRest's info
 * does not give it): read from the newest of its segments `names` that
 * archive-get returns whole (src/wal/segment-size.ts), then the oldest.
 * PostgreSQL's default for an archive with no segment: there is nothing to
 * number. Every computation on segment names (the chain's gaps, the reach
 * check, a drill's target window) takes it from here: a cluster made with
 * initdb --wal-segsize=64 numbers its segments differently.
 */
export async function stanzaSegmentSize(
  target: PgBackRestTarget,
  archiveId: string | undefined,
  names: readonly string[],
): Promise<number> {
  const segments = names.filter(isSegmentName);
  if (!archiveId || segments.length === 0) return DEFAULT_WAL_SEGMENT_SIZE;
  const key = JSON.stringify([target.stanza, target.configPath ?? '', target.repo ?? '', archiveId]);
  const known = measured.get(key);
  if (known) return known;
  const tried = [...new Set([segments[segments.length - 1]!, segments[0]!])];
  const size = await withTargetSegments(target, async (source) => {
    for (const name of tried) {
      const file = await source.fetchSegment(name, ''); // into the source's own directory
      const s = file ? await segmentSizeOfFile(file) : undefined;
      if (s) return s;
    }
    return undefined;
  });
  if (!size) {
    throw new LifeboatError(
      'TOOL_FAILED',
      `the WAL segment size of ${target.stanza}'s archive ${archiveId} could not be read: archive-get returned no whole segment among ${tried.join(', ')}`,
      {
        hints: [
          `${stanzaCommand(target)} verify checks the archive's files`,
          "segment names are numbered by the cluster's wal_segment_size (show wal_segment_size on the primary); nothing was changed",
        ],
      },
    );
  }
  measured.set(key, size);
  return size;
}
