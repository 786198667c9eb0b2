// `lifeboat evidence --runbook <name>`: the recoveries and drills recorded in
// the repository (<cluster>/evidence/*.json), oldest first, with their figures.
import { readEvidenceHistory } from '../../evidence/list';
import { seconds, targetText } from '../../evidence/figures';
import { resolveRepoTarget, type RepoOptions } from '../context';
import { table } from '../format';
import { printJson } from '../run';
import { shortTime } from './backups';

export async function run(opts: RepoOptions & { json?: boolean }): Promise<number> {
  const { repo, cluster } = await resolveRepoTarget(opts);
  const { records, unreadable } = await readEvidenceHistory(repo, cluster);
  if (opts.json) {
    printJson({ repository: repo.url, cluster, records, unreadable });
    return 0;
  }
  const drills = records.filter((r) => r.kind === 'drill').length;
  const out = [
    `evidence of cluster ${cluster} in ${repo.url}: ${records.length} record${records.length === 1 ? '' : 's'} ` +
      `(${drills} drill${drills === 1 ? '' : 's'}, ${records.length - drills} recover${records.length - drills === 1 ? 'y' : 'ies'})`,
  ];
  if (records.length > 0) {
    out.push(
      table(
        ['KIND', 'STARTED', 'TARGET', 'RTO', 'RPO', 'WAL SEGMENTS', 'VERDICT', 'RUN ID'],
        records.map((r) => [
          r.kind,
          shortTime(r.startedAt),
          targetText(r.target),
          seconds(r.rtoObservedSeconds),
          seconds(r.rpoObservedSeconds),
          r.walSegmentsReplayed === undefined ? '-' : String(r.walSegmentsReplayed),
          r.validationStatus + (r.dryRun ? ' (dry run)' : ''),
          r.runId,
        ]),
      ),
    );
  } else {
    out.push(
      `no recovery or drill recorded yet; run one: lifeboat drill ${opts.runbook ? `--runbook ${opts.runbook}` : '--runbook <name>'}`,
    );
  }
  for (const u of unreadable) out.push(`warning: ${u.key} is not a readable evidence record: ${u.problem}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
