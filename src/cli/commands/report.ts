// `lifeboat report --runbook <name> --out report.html`: the audit report of a
// cluster's drills and recoveries as one self-contained HTML page.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readEvidenceHistory } from '../../evidence/list';
import { renderReport } from '../../evidence/report';
import { LifeboatError, errorMessage } from '../../errors';
import { resolveRepoTarget, type RepoOptions } from '../context';

export async function run(opts: RepoOptions & { out?: string }): Promise<number> {
  const { runbook, repo, cluster } = await resolveRepoTarget(opts);
  const { records, unreadable } = await readEvidenceHistory(repo, cluster);
  const html = renderReport({
    runbook: runbook?.name ?? cluster,
    cluster,
    repository: repo.url,
    ...(runbook ? { objectives: runbook.objectives } : {}),
    records,
    unreadable,
    generatedAt: new Date(),
  });
  const out = path.resolve(opts.out ?? 'lifeboat-report.html');
  try {
    writeFileSync(out, html);
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `--out ${opts.out}: cannot write the report: ${errorMessage(err)}`, {
      hints: ['does the directory exist, and may this user write there?'],
      cause: err,
    });
  }
  const drills = records.filter((r) => r.kind === 'drill').length;
  process.stdout.write(
    `report of cluster ${cluster} written to ${out}: ${drills} drill${drills === 1 ? '' : 's'}, ${records.length - drills} recover${records.length - drills === 1 ? 'y' : 'ies'}` +
      `${unreadable.length ? `, ${unreadable.length} unreadable record${unreadable.length === 1 ? '' : 's'} listed` : ''}\n`,
  );
  return 0;
}
