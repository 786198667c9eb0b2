// `lifeboat pending [--runbook <name>] [--json]`: the running recoveries that
// wait for a person, and the command that gives each decision. Found through
// the visibility store by the LifeboatAwaiting search attribute the workflow
// keeps current (src/recovery/search-attributes.ts), then each run's `status`
// query for the details. Visibility lags the workflow by a moment; the query
// does not, so a run whose decision was just given is left out. Each run
// ends with the link to its checklist tab when a Temporal UI is known.
import type { Client } from '@temporalio/client';
import { connectClient } from '../../client/temporal';
import { errorMessage } from '../../errors';
import {
  REPAIR_ONLY_STEP_IDS,
  STEP_IDS,
  describeTarget,
  type PendingDecision,
  type RecoveryStatus,
} from '../../recovery/contract';
import { RECOVERY_WORKFLOW, REPAIR_WORKFLOW, statusQuery } from '../../recovery/messages';
import { AWAITING_ATTRIBUTE, RUNBOOK_ATTRIBUTE } from '../../recovery/search-attributes';
import { formatDuration } from '../format';
import { temporalTarget, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { checklistLines, runPage, temporalUiBase } from '../ui-link';
import { decisionCommands } from '../status-view';

type Options = TemporalOptions & { runbook?: string; json?: boolean; query?: boolean };

/** One run waiting for a decision, as `--json` prints it. */
export interface PendingRun {
  workflowId: string;
  runId: string;
  runbook: string;
  incident?: string;
  target?: string;
  /** Absent when the status query did not answer (no worker): only the search attribute is known. */
  pending?: PendingDecision & { stillNeeded: number };
  /** The step ids in LifeboatAwaiting when the run was listed. */
  awaiting: string[];
  commands: string[];
  queryError?: string;
  /** The run's checklist in the Temporal UI (its User Metadata tab), when a UI is known. */
  ui?: string;
}

const QUERY_TIMEOUT_MS = 10_000;

export async function run(opts: Options): Promise<number> {
  if (opts.query) {
    process.stdout.write(`${pendingQuery(opts.runbook)}\n`);
    return 0;
  }
  const temporal = await temporalTarget(opts);
  const { address, namespace } = temporal;
  const client = await connectClient(temporal);
  try {
    const ui = await temporalUiBase(address, process.env, opts.uiUrl);
    const runs = await findPending(
      client,
      opts.runbook,
      ui.base !== undefined ? { base: ui.base, namespace } : undefined,
    );
    if (opts.json) printJson(runs);
    else
      process.stdout.write(
        `${renderPending(runs, { now: new Date(), namespace, address, runbook: opts.runbook }).join('\n')}\n`,
      );
    return 0;
  } finally {
    await client.connection.close();
  }
}

/** The visibility query: running recoveries and repairs with any step in LifeboatAwaiting (an IN over every step id works on every visibility store). */
export function pendingQuery(runbook?: string): string {
  const steps = [...STEP_IDS, ...REPAIR_ONLY_STEP_IDS].map((s) => `'${s}'`).join(', ');
  const parts = [
    `WorkflowType IN ('${RECOVERY_WORKFLOW}', '${REPAIR_WORKFLOW}')`,
    `ExecutionStatus = 'Running'`,
    `${AWAITING_ATTRIBUTE.name} IN (${steps})`,
  ];
  if (runbook) parts.push(`${RUNBOOK_ATTRIBUTE.name} = '${runbook.replace(/'/g, "\\'")}'`);
  return parts.join(' AND ');
}

/** `queryTimeoutMs`: how long each run's status query may take (lifeboat metrics keeps it short, to answer within its scrape). */
export async function findPending(
  client: Client,
  runbook?: string,
  ui?: { base: string; namespace: string },
  queryTimeoutMs = QUERY_TIMEOUT_MS,
): Promise<PendingRun[]> {
  const out: PendingRun[] = [];
  for await (const wf of client.workflow.list({ query: pendingQuery(runbook) })) {
    const awaiting = (wf.typedSearchAttributes.get(AWAITING_ATTRIBUTE) ?? []).map(String);
    const item: PendingRun = {
      workflowId: wf.workflowId,
      runId: wf.runId,
      runbook: wf.typedSearchAttributes.get(RUNBOOK_ATTRIBUTE) ?? '?',
      awaiting,
      commands: [],
      ...(ui ? { ui: runPage(ui.base, ui.namespace, wf.workflowId, wf.runId) } : {}),
    };
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(), queryTimeoutMs);
    let status: RecoveryStatus | undefined;
    try {
      status = await client.withAbortSignal(giveUp.signal, () =>
        client.workflow.getHandle(wf.workflowId, wf.runId).query(statusQuery),
      );
    } catch (err) {
      item.queryError = giveUp.signal.aborted ? `no answer within ${queryTimeoutMs / 1000} s` : errorMessage(err);
    } finally {
      clearTimeout(timer);
    }
    if (status) {
      // The query is the truth; visibility may still list a decision just given.
      if (!status.pending || status.phase !== 'waiting') continue;
      item.pending = {
        ...status.pending,
        stillNeeded: Math.max(0, status.pending.min - status.pending.approvedBy.length),
      };
      if (status.incident) item.incident = status.incident;
      item.target = describeTarget(status.target);
      item.commands = decisionCommands(wf.workflowId, status.pending);
    }
    out.push(item);
  }
  // Oldest wait first: it has been paging someone the longest.
  return out.sort((a, b) => (a.pending?.since ?? '').localeCompare(b.pending?.since ?? ''));
}

export function renderPending(
  runs: PendingRun[],
  ctx: { now: Date; namespace: string; address: string; runbook?: string },
): string[] {
  const scope = `${ctx.runbook ? `runbook ${ctx.runbook}, ` : ''}namespace ${ctx.namespace} at ${ctx.address}`;
  if (runs.length === 0) {
    return [
      `nothing pending: no running recovery waits for a decision (${scope})`,
      '  a decision given in the last second or two may still show here; running recoveries: lifeboat status <workflowId>',
    ];
  }
  const out = [`${runs.length} recover${runs.length === 1 ? 'y waits' : 'ies wait'} for a decision (${scope}):`];
  for (const r of runs) {
    out.push(
      '',
      `${r.workflowId}  runbook ${r.runbook}${r.incident ? `  ${r.incident}` : ''}${r.target ? `  to ${r.target}` : ''}`,
    );
    const p = r.pending;
    if (!p) {
      out.push(
        `  waits at ${r.awaiting.join(', ') || '?'} (from the search attribute); status query did not answer: ${r.queryError ?? '?'}`,
      );
      out.push('  HINT: is a worker polling task queue lifeboat? (lifeboat worker)');
      out.push(...uiLines(r));
      continue;
    }
    const waited = formatDuration(Math.max(0, Math.floor((ctx.now.getTime() - Date.parse(p.since)) / 1000)));
    if (p.kind === 'approval') {
      const who = p.approvers.length > 0 ? p.approvers.join(', ') : 'anyone named';
      const so = p.approvedBy.length > 0 ? `; approved so far by ${p.approvedBy.join(', ')}` : '';
      out.push(
        `  ${p.step}: needs ${p.stillNeeded} more approval${p.stillNeeded === 1 ? '' : 's'} from ${who}${so}; waiting since ${p.since} (${waited})`,
      );
    } else {
      out.push(
        `  ${p.step} failed: waits for retry, skip or abort by ${p.approvers.join(', ') || 'an operator'}; since ${p.since} (${waited})`,
      );
    }
    out.push(...r.commands.map((c) => `  ${c}`));
    out.push(...uiLines(r));
  }
  return out;
}

function uiLines(r: PendingRun): string[] {
  return r.ui ? checklistLines(r.ui).map((l) => `  ${l}`) : [];
}
