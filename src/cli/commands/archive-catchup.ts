// `lifeboat archive-catchup --runbook <name>`: copies into every other
// repository of the runbook the WAL the first one holds and it lacks (a
// repository that was down under repositoryPolicy: primary, or one added to
// the list later). Reads the listings, not the archiving host's queue, so it
// runs anywhere the repositories are reachable; with --pg-wal it also clears
// that host's queue entries it made redundant. Exit 0 when every repository
// holds every file, 1 otherwise.
import * as path from 'node:path';
import { closeRepositories, openRepositories } from '../../repository/multi';
import { clusterName } from '../../runbook/schema';
import { catchUp, queueDirOf } from '../../wal/catchup';
import { requireRunbook, intOption, type RepoOptions } from '../context';
import { EXIT, printJson } from '../run';

export async function run(opts: RepoOptions & { pgWal?: string; parallel?: string; json?: boolean }): Promise<number> {
  const runbook = await requireRunbook(opts, 'archive-catchup');
  const cluster = opts.cluster ?? clusterName(runbook);
  const list = await openRepositories(runbook, 'archive');
  try {
    if (list.length < 2) {
      process.stderr.write(`runbook ${runbook.name} names one repository: nothing to catch up\n`);
      return EXIT.ok;
    }
    const results = await catchUp(list, cluster, {
      parallel: intOption(opts.parallel ?? '4', '--parallel'),
      ...(opts.pgWal ? { queueDir: queueDirOf(path.resolve(opts.pgWal)) } : {}),
      ...(opts.json ? {} : { log: (line: string) => process.stdout.write(`${line}\n`) }),
    });
    const ok = results.every((r) => r.failed.length === 0);
    if (opts.json) printJson({ cluster, from: list[0]!.name, repositories: results });
    else {
      for (const r of results) for (const f of r.failed.slice(0, 10)) process.stdout.write(`  ${r.name}: ${f.walFile}: ${f.error}\n`);
      if (!ok) process.stdout.write(`HINT: run again once the repository answers; lifeboat check --runbook ${runbook.name} reports how far behind each one is\n`);
    }
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    closeRepositories(list);
  }
}
