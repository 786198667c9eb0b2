// The evidence history of a cluster: every `<cluster>/evidence/<runId>.json`
// (shared/DESIGN.md §7) that recoveries and drills wrote, oldest first. What
// `lifeboat evidence` lists and `lifeboat report` draws.
//
// A record that cannot be read is reported, never silently dropped: an
// auditor must be able to tell "no drill ran" from "a record is damaged".
import type { Evidence } from '../recovery/contract';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { errorMessage, withContext } from '../errors';

export interface EvidenceHistory {
  records: Evidence[];
  /** Objects under evidence/ that are not a readable record, with why. */
  unreadable: Array<{ key: string; problem: string }>;
}

/**
 * A record is written once and never changed, so a long-lived reader (lifeboat
 * metrics) may pass `known`: records read before, by key, are not fetched again.
 */
export async function readEvidenceHistory(
  repo: Repository,
  cluster: string,
  known?: Map<string, Evidence>,
): Promise<EvidenceHistory> {
  const prefix = `${keys.clusterPrefix(cluster)}evidence/`;
  let objects;
  try {
    objects = await repo.list(prefix);
  } catch (err) {
    throw withContext(`while listing the evidence of cluster ${cluster} in ${repo.url}`, err);
  }
  const records: Evidence[] = [];
  const unreadable: EvidenceHistory['unreadable'] = [];
  const wanted = objects.filter((o) => o.key.endsWith('.json') && !o.key.slice(prefix.length).includes('/'));
  if (known) {
    const listed = new Set(wanted.map((o) => o.key));
    for (const key of known.keys()) if (!listed.has(key)) known.delete(key);
  }
  for (let i = 0; i < wanted.length; i += 16) {
    await Promise.all(
      wanted.slice(i, i + 16).map(async (o) => {
        const seen = known?.get(o.key);
        if (seen) {
          records.push(seen);
          return;
        }
        try {
          const got = await repo.get(o.key);
          if (!got) return; // deleted while listing
          const problem = checkRecord(JSON.parse(got.body.toString('utf8')));
          if (typeof problem === 'string') unreadable.push({ key: o.key, problem });
          else {
            records.push(problem);
            known?.set(o.key, problem);
          }
        } catch (err) {
          unreadable.push({ key: o.key, problem: errorMessage(err).split('\n')[0] ?? 'unreadable' });
        }
      }),
    );
  }
  records.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.runId < b.runId ? -1 : 1));
  unreadable.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { records, unreadable };
}

/** The record, or why it is not one: the fields every reader here relies on. */
export function checkRecord(json: unknown): Evidence | string {
  if (json === null || typeof json !== 'object') return 'not a JSON object';
  const r = json as Record<string, unknown>;
  if (r.kind !== 'recovery' && r.kind !== 'drill' && r.kind !== 'repair')
    return `kind is ${JSON.stringify(r.kind)}, expected "recovery", "drill" or "repair"`;
  for (const f of ['runId', 'runbook', 'startedAt', 'validationStatus'] as const) {
    if (typeof r[f] !== 'string') return `${f} is missing or not a string`;
  }
  if (Number.isNaN(Date.parse(r.startedAt as string))) return `startedAt ${JSON.stringify(r.startedAt)} is not a time`;
  if (r.target === null || typeof r.target !== 'object') return 'target is missing';
  // Older or partial records: lists the report reads are always arrays.
  return {
    ...(r as unknown as Evidence),
    invariants: Array.isArray(r.invariants) ? (r.invariants as Evidence['invariants']) : [],
    approvals: Array.isArray(r.approvals) ? (r.approvals as Evidence['approvals']) : [],
    steps: Array.isArray(r.steps) ? (r.steps as Evidence['steps']) : [],
    notes: Array.isArray(r.notes) ? (r.notes as string[]) : [],
  };
}
