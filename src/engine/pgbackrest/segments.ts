// Archived segments of a pgBackRest stanza for pg_waldump (a drill's newest
// commit, preflight's reach check): fetched one at a time with `pgbackrest
// archive-get` (decompressed, decrypted) as the PostgreSQL OS user, into a
// temporary directory it owns. Nothing of pgBackRest's repository is read as
// files.
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SegmentSource } from '../../drill/newest-commit';
import { chownToUser } from '../../restore/os-user';
import { engineSetting } from '../../runbook/engine';
import type { Runbook } from '../../runbook/schema';
import { runPgBackRest } from './command';

/** archive-get's exit code for a segment the archive does not have. */
const NOT_IN_ARCHIVE = 1;

/** Runs `fn` with the stanza's segments as a source, then removes what was fetched. */
export async function withStanzaSegments<T>(runbook: Runbook, fn: (source: SegmentSource) => Promise<T>): Promise<T> {
  const setting = engineSetting(runbook);
  if (setting.kind !== 'pgbackrest') throw new Error(`runbook ${runbook.name}: engine ${setting.kind} has no stanza`);
  const target = {
    stanza: setting.stanza,
    osUser: runbook.cluster.osUser,
    ...(setting.configPath ? { configPath: setting.configPath } : {}),
    ...(setting.repo !== undefined ? { repo: setting.repo } : {}),
  };
  // archive-get runs as the PostgreSQL OS user: it writes into a directory of its own.
  const own = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-archive-get-'));
  try {
    await chownToUser(own, runbook.cluster.osUser);
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
