// `lifeboat archive-push-ahead` (internal): the read-ahead pusher that
// archive-push starts, detached, beside PostgreSQL's archiver (src/wal/ahead.ts).
// Its failures are left to PostgreSQL's own call for the file, which reports
// them in the server log; here they go to pg_wal/.lifeboat-pushed/pusher.log.
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { resolveRepoTarget, intOption, type RepoOptions } from '../context';
import { runPusher } from '../../wal/ahead';
import { archiveTargetId, markerDir } from '../../wal/marker';
import { queueDirOf } from '../../wal/catchup';
import { archiverFor } from '../../wal/push-repositories';
import { EXIT } from '../run';

export async function run(opts: RepoOptions & { pgWal: string; parallel?: string }): Promise<number> {
  const pgWalDir = path.resolve(opts.pgWal);
  const logFile = path.join(markerDir(pgWalDir), 'pusher.log');
  const log = (line: string) => {
    try {
      appendFileSync(logFile, `${new Date().toISOString()} pid ${process.pid}: ${line}\n`);
    } catch {
      /* nowhere to report; PostgreSQL's own call will */
    }
  };
  const target = await resolveRepoTarget(opts, 'archive');
  const { repo, cluster } = target;
  const archiver = await archiverFor(target, queueDirOf(pgWalDir), log);
  try {
    await runPusher({
      repo,
      cluster,
      push: archiver.push,
      pgWalDir,
      target: archiveTargetId(opts),
      parallel: intOption(opts.parallel ?? '4', '--parallel'),
      log,
    });
    return EXIT.ok;
  } finally {
    (repo as { destroy?: () => void }).destroy?.();
    archiver.close();
    // Uploads given up on (a frozen second repository) must not keep the pusher alive.
    setTimeout(() => process.exit(), 1000).unref();
  }
}
