// The figures of one evidence record as an operator reads them: RTO with its
// phases, RPO, WAL replayed, verdict. Shared by `lifeboat drill` (after a
// run), `lifeboat evidence` (the history) and the HTML report.
import { describeTarget, type Evidence, type Target } from '../recovery/contract';

export function seconds(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n < 100 ? `${n.toFixed(1)} s` : `${Math.round(n)} s`;
}

export function targetText(t: Target | undefined): string {
  try {
    return t ? describeTarget(t) : '-';
  } catch {
    return JSON.stringify(t);
  }
}

/** "RTO 24.1 s (objective 2700 s, met): restore 10.2 s, replay 5.3 s". */
export function rtoLine(e: Evidence): string {
  const o = e.objectives;
  const objective = o
    ? ` (objective ${o.rtoSeconds} s${o.rtoMet === undefined ? '' : o.rtoMet ? ', met' : ', MISSED'})`
    : '';
  const phases = Object.entries(e.rtoPhases ?? {})
    .map(([k, v]) => `${k} ${seconds(v)}`)
    .join(', ');
  return `RTO ${seconds(e.rtoObservedSeconds)}${objective}${phases ? `: ${phases}` : ''}`;
}

export function rpoLine(e: Evidence): string {
  const o = e.objectives;
  const objective = o
    ? ` (objective ${o.rpoSeconds} s${o.rpoMet === undefined ? '' : o.rpoMet ? ', met' : ', MISSED'})`
    : '';
  return `RPO ${seconds(e.rpoObservedSeconds)}${objective}`;
}

/** Every line `lifeboat drill` prints after a run. */
export function evidenceLines(e: Evidence, evidenceKey: string): string[] {
  const failedInvariants = e.invariants.filter((i) => !i.passed);
  const lines = [
    `${e.kind} ${e.workflowId ?? e.runId} ${e.validationStatus}: backup ${e.backupId ?? '-'} to ${targetText(e.target)}`,
    rtoLine(e),
    rpoLine(e),
    `WAL: ${e.walSegmentsReplayed ?? '-'} segment${e.walSegmentsReplayed === 1 ? '' : 's'} replayed` +
      (e.replayedToLsn ? ` to ${e.replayedToLsn}` : '') +
      (e.replayedToTime ? ` (${e.replayedToTime})` : ''),
    `invariants: ${e.invariants.length - failedInvariants.length} passed, ${failedInvariants.length} failed` +
      (failedInvariants.length ? ` (${failedInvariants.map((i) => i.name).join(', ')})` : ''),
  ];
  // The first line only: the full message with its hints is what the CLI prints as the error.
  for (const s of e.steps.filter((x) => x.state === 'failed'))
    lines.push(`failed step ${s.id}: ${(s.error ?? '').split('\n')[0]}`.trimEnd());
  for (const n of e.notes) lines.push(`note: ${n}`);
  lines.push(`evidence: ${evidenceKey}`);
  return lines;
}
