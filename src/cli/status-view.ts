// How `lifeboat status` (and `recover --follow`) draws a recovery: header,
// checklist of every step, live progress bars, the decision it waits for with
// the exact commands to give it, invariants, decisions and ignored messages.
// Pure functions of what status.ts fetched, so a test can assert the text an
// operator reads; `now` and `color` come from the caller.
import {
  STEP_TITLES,
  describeTarget,
  type Evidence,
  type PendingDecision,
  type RecoveryStatus,
  type ReplayProgress,
  type RestoreProgress,
  type StepId,
  type StepError,
  type StepRecord,
} from '../recovery/contract';
import { isErrorCode } from '../errors';
import { formatDuration } from './format';
import { replayLine, restoreLine } from './progress-view';

// The pieces it is drawn with, and what else an operator reads about a run,
// live beside it; importable from here as before.
export { lsnValue, progressBar, replayFraction, replayLine, restoreFraction, restoreLine } from './progress-view';
export { recoveryDetails, recoverySummary, type ParsedInput } from './run-summary';
export { retargetOutcome, type RetargetOutcome } from './retarget-view';

export interface LiveProgress {
  /** Heartbeat of restoreBaseBackup, while it runs. */
  restore?: RestoreProgress;
  /** Heartbeat of replayWal, while it runs. */
  replay?: ReplayProgress;
}

/** Everything one look at a recovery run found. */
export interface StatusSnapshot {
  workflowId: string;
  /** When Temporal started the run (shown when the query does not answer). */
  startedAt?: string;
  /** The `status` query's answer; absent when the query failed. */
  status?: RecoveryStatus;
  progress: LiveProgress;
  /** Set once the run is closed: Temporal's status name and close time. */
  closed?: { status: string; at?: string };
  /** The evidence a completed run returned. */
  result?: Evidence;
  /** Why a closed run failed (innermost failure message, with its HINT lines). */
  failure?: string;
  /** Why the status query did not answer. */
  queryError?: string;
}

export interface RenderOptions {
  now: Date;
  color: boolean;
}

const MARKERS: Record<StepRecord['state'], string> = {
  done: '[x]',
  running: '[>]',
  'awaiting-approval': '[?]',
  failed: '[!]',
  skipped: '[-]',
  pending: '[ ]',
};

const COLORS = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
type Color = keyof typeof COLORS;
const MARKER_COLOR: Record<StepRecord['state'], Color | undefined> = {
  done: 'green',
  running: 'cyan',
  'awaiting-approval': 'yellow',
  failed: 'red',
  skipped: 'dim',
  pending: undefined,
};

// Longest step id (disable-background-jobs) and longest formatDuration ("59 min 59 s").
const ID_WIDTH = 23;
const DURATION_WIDTH = 11;
const DETAIL_INDENT = ' '.repeat(8);

export function renderStatus(snap: StatusSnapshot, opts: RenderOptions): string {
  const paint = (color: Color | undefined, text: string) =>
    opts.color && color ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text;
  const status = snap.status ?? (snap.result ? statusFromEvidence(snap.result) : undefined);
  if (!status) return [...bareHeader(snap, opts.now), ...outcome(snap, paint)].join('\n');

  const out: string[] = [];
  const mode = `${status.mode}${status.dryRun ? ', dry run' : ''}`;
  const r = status.repair;
  out.push(
    paint(
      'bold',
      r
        ? `repair ${r.tables.join(', ')} of ${status.runbook} from ${describeTarget(r.before)}${r.after ? ` / ${describeTarget(r.after)}` : ' (no after target)'}${status.dryRun ? ' (dry run)' : ''}`
        : `recover ${status.runbook} to ${describeTarget(status.target)} (${mode})`,
    ),
  );
  if (status.incident || status.reason)
    out.push(`  incident ${status.incident ?? '(none)'}${status.reason ? `: ${status.reason}` : ''}`);
  out.push(`  workflow ${snap.workflowId}  phase ${status.phase}  elapsed ${since(status.startedAt, opts.now)}`);
  if (status.backup) out.push(`  backup ${status.backup.backupId}: ${status.backup.why}`);

  out.push('', paint('bold', 'Steps:'));
  for (const step of status.steps) {
    out.push(paint(MARKER_COLOR[step.state], stepLine(step, status.pending, opts.now)));
    if (step.state === 'failed' && step.error)
      out.push(...errorHints(step.error.message, step.error.hints).map((h) => `${DETAIL_INDENT}HINT: ${h}`));
    if (step.id === 'restore-base-backup' && snap.progress.restore)
      out.push(`${DETAIL_INDENT}${restoreLine(snap.progress.restore)}`);
    if (step.id === 'replay-wal' && snap.progress.replay)
      out.push(`${DETAIL_INDENT}${replayLine(snap.progress.replay, status)}`);
  }

  if (status.replay) {
    const rpo =
      status.rpoObservedSeconds !== undefined ? `; observed RPO ${formatDuration(status.rpoObservedSeconds)}` : '';
    out.push(
      '',
      `Replayed to ${status.replay.lsn}${status.replay.time ? `, last commit ${status.replay.time}` : ''}${status.replay.paused ? ', paused' : ''}${rpo}`,
    );
  }
  // A repair: the diff's counts per table, then what each table's transaction did.
  for (const t of r?.diff?.tables ?? []) {
    const counts = Object.entries(t.counts)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    out.push('', `Diff of ${t.table}: ${counts || 'no rows'}`);
  }
  if (r?.diff) out.push(`  artefact (samples, exact SQL, plans): ${r.diff.artefact}`);
  for (const a of r?.applied ?? []) {
    out.push(
      `Applied to ${a.table}${a.alreadyApplied ? ' (already applied)' : ''}: ${a.updated} updated, ${a.inserted} inserted, ${a.skipped} skipped${
        a.skippedKeys.length
          ? ` (${a.skippedKeys
              .slice(0, 5)
              .map((k) => k.join(','))
              .join('; ')})`
          : ''
      }`,
    );
  }
  if (status.invariants && status.invariants.length > 0) {
    out.push('', paint('bold', 'Invariants:'));
    for (const inv of status.invariants) {
      const expected = !inv.passed && inv.expected !== undefined ? `, expected ${inv.expected}` : '';
      const detail = inv.error ? `error: ${inv.error}` : `${inv.value}${expected}`;
      out.push(
        paint(
          inv.passed ? 'green' : 'red',
          `  ${inv.passed ? 'pass' : 'FAIL'}  ${inv.name}: ${detail}${inv.builtin ? ' (built in)' : ''}`,
        ),
      );
    }
  }
  if (status.pending && !snap.closed) out.push('', ...pendingLines(snap.workflowId, status.pending, opts.now, paint));
  if (status.decisions.length > 0) {
    out.push('', paint('bold', 'Decisions:'));
    for (const d of status.decisions) {
      const what =
        d.decision === 'retarget' && d.target ? `retarget to ${describeTarget(d.target)}` : `${d.decision} ${d.step}`;
      out.push(`  ${clock(d.at)}  ${what} by ${d.by} (${d.via})${d.comment ? `: ${d.comment}` : ''}`);
    }
  }
  if (status.ignored.length > 0) {
    out.push('', paint('yellow', 'Ignored messages:'));
    for (const m of status.ignored) {
      out.push(
        `  ${clock(m.at)}  ${m.name} ${m.via}${m.by ? ` by ${m.by}` : ''}${m.step ? ` on ${m.step}` : ''}: ${m.why}`,
      );
    }
  }
  if (snap.queryError && !snap.closed) {
    out.push(
      '',
      paint('yellow', `Status query did not answer: ${snap.queryError}`),
      '  HINT: is a worker polling task queue lifeboat? (lifeboat worker)',
    );
  }
  out.push(...outcome(snap, paint));
  return out.join('\n');
}

/** One checklist line: marker, step id, duration, and what it did or waits for. */
export function stepLine(step: StepRecord, pending: PendingDecision | undefined, now: Date): string {
  const end = step.finishedAt
    ? new Date(step.finishedAt)
    : step.state === 'running' || step.state === 'awaiting-approval'
      ? now
      : undefined;
  const duration =
    step.startedAt && end
      ? formatDuration(Math.max(0, Math.floor((end.getTime() - Date.parse(step.startedAt)) / 1000)))
      : '';
  const again = step.runs > 1 ? ` (run ${step.runs})` : '';
  let text: string;
  switch (step.state) {
    case 'failed':
      text = step.error ? `${step.error.type}: ${firstLine(step.error.message)}${again}` : `failed${again}`;
      break;
    case 'skipped':
      text = step.skipped ? `skipped by ${step.skipped.by}: ${step.skipped.reason}` : 'skipped';
      break;
    case 'awaiting-approval':
      text = pending?.step === step.id ? `${step.title}: ${approvalNeeds(pending)}` : step.title;
      break;
    default:
      text = `${step.summary ?? step.title}${step.state === 'running' ? again : ''}`;
  }
  return `  ${MARKERS[step.state]} ${step.id.padEnd(ID_WIDTH)}  ${duration.padEnd(DURATION_WIDTH)}  ${text}`.trimEnd();
}

function approvalNeeds(p: PendingDecision): string {
  const who =
    p.approvers.length > 0 ? `${p.min} of ${p.approvers.join(', ')}` : `${p.min} approver${p.min === 1 ? '' : 's'}`;
  return `needs ${who}${p.approvedBy.length > 0 ? `; approved by ${p.approvedBy.join(', ')}` : ''}`;
}

/** The decision the run waits for, who may give it, and the commands that give it. */
export function pendingLines(
  workflowId: string,
  p: PendingDecision,
  now: Date,
  paint: (c: Color | undefined, t: string) => string = (_c, t) => t,
): string[] {
  const title =
    p.kind === 'approval' ? `Waiting for approval of ${p.step}` : `Step ${p.step} failed; waiting for an operator`;
  const out = [paint('yellow', `${title} since ${clock(p.since)} (${since(p.since, now)}):`)];
  if (p.kind === 'approval') {
    const approved = p.approvedBy.length > 0 ? `; approved so far by ${p.approvedBy.join(', ')}` : '';
    out.push(
      `  may decide: ${p.approvers.length > 0 ? p.approvers.join(', ') : 'anyone named'} (${p.min} must approve${approved})`,
    );
  }
  const commands = decisionCommands(workflowId, p);
  out.push(...commands.map((c) => `  ${c}`));
  // The workflow's own words (e.g. what to send from the Temporal UI), unless they repeat ours.
  out.push(...p.how.filter((h) => !commands.includes(h.trim())).map((h) => `  ${h}`));
  return out;
}

export function decisionCommands(workflowId: string, p: PendingDecision): string[] {
  const id = shellWord(workflowId);
  if (p.kind === 'approval') {
    const out = [
      `lifeboat approve ${id} ${p.step} --as <who> [--comment <text>]`,
      `lifeboat reject ${id} ${p.step} --as <who> --reason <text>`,
    ];
    // Only the promotion approval can move the target (DESIGN.md §4.1 step 10).
    if (p.step === 'approve-promote') out.push(`lifeboat retarget ${id} --to-time <iso>|--to-lsn <lsn>|... --as <who>`);
    // Conflicts are restored only when an approver says so (DESIGN.md §4.3).
    if (p.step === 'approve-repair')
      out.push(
        `lifeboat approve ${id} approve-repair --as <who> --include changedSince   (also overwrite rows changed since the incident)`,
      );
    return out;
  }
  // Skip only where the run offers it (its own how-to names it, for a step
  // the runbook marks skippable): offering `skip preflight` only to have it
  // refused costs an operator a round trip in the middle of an incident.
  const skippable = p.how.some((h) => h.startsWith('skip:'));
  return [
    `lifeboat retry ${id} ${p.step} --as <who>`,
    ...(skippable ? [`lifeboat skip ${id} ${p.step} --as <who> --reason <text>`] : []),
    `lifeboat abort ${id} ${p.step} --as <who> --reason <text>`,
  ];
}

// ---------------------------------------------------------------- closed runs

/** A closed run whose query no longer answers still shows its steps, from the evidence it returned. */
export function statusFromEvidence(e: Evidence): RecoveryStatus {
  return {
    workflow: e.kind === 'repair' ? 'repairFromPointInTime' : 'recoverToPointInTime',
    ...(e.repair ? { repair: e.repair } : {}),
    runbook: e.runbook,
    cluster: e.cluster,
    ...(e.incident !== undefined ? { incident: e.incident } : {}),
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
    target: e.target,
    mode: e.mode ?? 'side-by-side',
    dryRun: e.dryRun ?? false,
    phase: e.validationStatus === 'aborted' || e.validationStatus === 'rejected' ? e.validationStatus : 'finished',
    startedAt: e.startedAt,
    steps: e.steps.map((s) => ({
      id: s.id as StepId,
      title: STEP_TITLES[s.id as StepId] ?? s.id,
      state: s.state,
      runs: 1,
      ...(s.startedAt ? { startedAt: s.startedAt } : {}),
      ...(s.finishedAt ? { finishedAt: s.finishedAt } : {}),
      ...(s.summary ? { summary: s.summary } : {}),
      ...(s.error ? { error: errorOfEvidence(s.error) } : {}),
    })),
    decisions: e.approvals.map((a) => ({
      step: a.step as StepId,
      by: a.by,
      at: a.at,
      decision: a.decision as RecoveryStatus['decisions'][number]['decision'],
      via: 'signal' as const,
      ...(a.comment ? { comment: a.comment } : {}),
    })),
    ignored: [],
    invariants: e.invariants,
    ...(e.rpoObservedSeconds !== undefined ? { rpoObservedSeconds: e.rpoObservedSeconds } : {}),
  };
}

function bareHeader(snap: StatusSnapshot, now: Date): string[] {
  const out = [
    `recoverToPointInTime ${snap.workflowId}${snap.startedAt ? `  started ${snap.startedAt}, elapsed ${since(snap.startedAt, now)}` : ''}`,
  ];
  if (snap.queryError) out.push(`  status query did not answer: ${snap.queryError}`);
  if (!snap.closed) out.push('  HINT: is a worker polling task queue lifeboat? (lifeboat worker)');
  return out;
}

function outcome(snap: StatusSnapshot, paint: (c: Color | undefined, t: string) => string): string[] {
  if (!snap.closed) return [];
  const e = snap.result;
  if (snap.closed.status === 'COMPLETED' && e) {
    const rto = e.rtoObservedSeconds !== undefined ? `, RTO ${formatDuration(e.rtoObservedSeconds)}` : '';
    const rpo = e.rpoObservedSeconds !== undefined ? `, RPO ${formatDuration(e.rpoObservedSeconds)}` : '';
    return [
      '',
      paint(
        e.validationStatus === 'passed' ? 'green' : 'red',
        `Finished at ${e.finishedAt}: validation ${e.validationStatus}${rto}${rpo}`,
      ),
    ];
  }
  const lines = ['', paint('red', `Closed: ${snap.closed.status}${snap.closed.at ? ` at ${snap.closed.at}` : ''}`)];
  if (snap.failure) lines.push(...snap.failure.split('\n').map((l) => `  ${l}`));
  return lines;
}

/** Whether a closed run ended well: completed, and its evidence does not say otherwise. */
export function succeeded(snap: StatusSnapshot): boolean {
  return (
    snap.closed?.status === 'COMPLETED' && (snap.result === undefined || snap.result.validationStatus === 'passed')
  );
}

// ---------------------------------------------------------------- small helpers

function since(iso: string, now: Date): string {
  return formatDuration(Math.max(0, Math.floor((now.getTime() - Date.parse(iso)) / 1000)));
}

/** "2026-06-04T14:40:02.123Z" as "14:40:02Z": decisions happen within one recovery, hours not days. */
function clock(iso: string): string {
  const m = /T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]}Z` : iso;
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? '';
}

/** The error's hints, or the HINT lines its message carries (ApplicationFailure messages keep them). */
function errorHints(message: string, hints: string[]): string[] {
  if (hints.length > 0) return hints;
  return message
    .split('\n')
    .filter((l) => l.startsWith('HINT: '))
    .map((l) => l.slice('HINT: '.length));
}

function shellWord(s: string): string {
  return /^[\w.:@/+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/** Evidence keeps a step's error as "TYPE: message"; the type is the catalogue's, or UNEXPECTED. */
function errorOfEvidence(text: string): StepError {
  const m = /^([A-Z_]+): ([\s\S]*)$/.exec(text);
  return m && isErrorCode(m[1])
    ? { type: m[1], message: m[2]!, hints: [] }
    : { type: 'UNEXPECTED', message: text, hints: [] };
}
