// The markdown the Temporal UI shows as the run's current details (the User
// Metadata tab): the steps as a checklist, and the decision that waits, with
// how to give it. The UI's renderer has no task lists and no hard line
// breaks, and the browser may lack emoji fonts: markers are plain text (the
// CLI's), head lines are paragraphs, and commands and JSON go in code spans
// so `<you>` is not taken for HTML and `--as` not turned into a dash.
import { describeTarget, type RecoveryStatus, type StepRecord } from '../../src/recovery/contract';
import { repairEndedLine, repairHead, repairLines } from '../repair/checklist-lines';

const MARK: Record<StepRecord['state'], string> = {
  pending: '`[ ]`',
  running: '`[>]` **running:**',
  'awaiting-approval': '`[?]` **waiting for approval:**',
  done: '`[x]`',
  skipped: '`[-]` skipped:',
  failed: '`[!]` **failed:**',
};

export function renderChecklist(s: RecoveryStatus, workflowId: string): string {
  const out = [
    s.repair ? repairHead(s) : recoveryHead(s),
    '',
    // What a responder needs first: how it ended, or what it waits for and how to give it.
    ...nowLines(s),
  ];
  if (s.ignored.length > 0) {
    const last = s.ignored[s.ignored.length - 1]!;
    out.push('', `Ignored messages: ${s.ignored.length} (last: ${last.name} from ${last.by ?? '?'}: ${last.why})`);
  }
  if (s.asOf)
    out.push('', `Written at ${s.asOf}. This page does not refresh itself: press R (or reload) for the latest.`);
  const facts: string[] = [];
  if (s.backup) facts.push(`Backup \`${s.backup.backupId}\` (${s.backup.why})`);
  // Paused only until promotion: a finished run's copy is a primary, whatever the last replay look said.
  const promoted = s.steps.some((x) => x.id === 'promote' && x.state === 'done');
  if (s.replay) {
    const lastCommit = s.replay.time ? ` (last commit ${s.replay.time})` : '';
    facts.push(`Replayed to \`${s.replay.lsn}\`${lastCommit}${s.replay.paused && !promoted ? ', paused' : ''}`);
  }
  if (s.rpoObservedSeconds !== undefined) facts.push(`Observed RPO: ${s.rpoObservedSeconds} s`);
  if (facts.length > 0) out.push('', facts.join('\n\n'));
  out.push(
    '',
    ...s.steps.map((st) => {
      const note = st.summary ?? (st.error ? `${st.error.type}: ${st.error.message.split('\n')[0]}` : '');
      return `- ${MARK[st.state]} \`${st.id}\` ${st.title}${note ? ` — ${note}` : ''}`;
    }),
  );
  out.push(...repairLines(s));
  if (s.invariants?.some((i) => !i.passed)) {
    out.push(
      '',
      `**Failed invariants:** ${s.invariants
        .filter((i) => !i.passed)
        .map((i) => `${i.name} (got ${i.value}${i.expected !== undefined ? `, expected ${i.expected}` : ''})`)
        .join('; ')}`,
    );
  }
  out.push('', `Query \`status\` for everything, or: \`lifeboat status ${workflowId} --watch\``);
  return out.join('\n');
}

function recoveryHead(s: RecoveryStatus): string {
  const incident = s.incident ? ` · ${s.incident}` : '';
  const dryRun = s.dryRun ? ' · dry run' : '';
  return `**Recovery of \`${s.runbook}\` to ${describeTarget(s.target)}**${incident} · ${s.mode}${dryRun}`;
}

const VERDICT: Record<string, string> = {
  passed: 'recovered',
  failed: 'recovered, with a failed check',
  aborted: 'aborted',
  rejected: 'rejected',
};

/** The run's state in a line or a few: how it ended, the decision it waits for, or the step it runs. */
function nowLines(s: RecoveryStatus): string[] {
  const ended = s.phase === 'finished' || s.phase === 'aborted' || s.phase === 'rejected' || s.phase === 'failed';
  if (ended) {
    const o = s.outcome;
    if (o && s.repair) return [repairEndedLine(s)];
    if (!o) {
      const failed = s.steps.find((x) => x.state === 'failed');
      return [
        `**Ended: ${s.phase}**${failed ? ` at \`${failed.id}\`: ${failed.error?.message.split('\n')[0] ?? ''}` : ''}`,
        ...(failed?.error?.hints ?? []).map((h) => `> HINT: ${h}`),
      ];
    }
    const lastCommit = s.replay?.time ? `; last commit replayed: ${s.replay.time}` : '';
    const figures = [
      o.promotedAt ? `promoted at ${o.promotedAt}` : 'nothing promoted',
      ...(o.rtoObservedSeconds !== undefined ? [`RTO ${o.rtoObservedSeconds} s`] : []),
      // RPO is measured against a target time; for latest, a name, an LSN or an xid say so, with the last commit kept.
      o.rpoObservedSeconds !== undefined
        ? `RPO ${o.rpoObservedSeconds} s`
        : `RPO not measured (the target is not a time${lastCommit})`,
    ];
    return [`**Ended: ${VERDICT[o.verdict] ?? o.verdict}** · ${figures.join(' · ')}`];
  }
  const p = s.pending;
  if (!p) {
    const running = s.steps.find((x) => x.state === 'running');
    return [
      running
        ? `**Running: \`${running.id}\`** ${running.title}; nothing waits for a person.`
        : '**Running**; nothing waits for a person.',
    ];
  }
  const out: string[] = [];
  if (p.kind === 'approval') {
    const who = p.approvers.length ? p.approvers.join(', ') : 'any named approver';
    const so = `${p.approvedBy.length} of ${p.min} (${p.approvedBy.join(', ') || 'none yet'})`;
    out.push(`**Waiting for approval: \`${p.step}\`** since ${p.since}: ${so}; may approve: ${who}.`);
  } else {
    const err = s.steps.find((x) => x.id === p.step)?.error;
    out.push(`**\`${p.step}\` failed** since ${p.since}: ${err?.message.split('\n')[0] ?? ''}`);
    for (const h of err?.hints ?? []) out.push(`> HINT: ${h}`);
  }
  out.push('');
  for (const h of p.how) out.push(`- ${codeSpans(h)}`);
  return out;
}

/** JSON payloads and `lifeboat ...` commands of a how-to line as code spans. */
function codeSpans(line: string): string {
  return (
    line
      .replace(/\{.*\}/, (json) => `\`${json}\``)
      // approve-repair's "include": [...] outside the braces and its CLI flag:
      // markdown would read the brackets as a link and -- as a dash.
      .replace(/("include": \[[^\]]*\]|--include \w+)(?![^`]*`)/g, (member) => `\`${member}\``)
      .replace(/lifeboat [^()`]*?(?=\s*\(|$)/g, (cmd) => `\`${cmd}\``)
      .replace(/<(?![^`]*`)/g, '\\<')
  );
}
