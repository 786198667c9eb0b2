// The words a chat user types after the slash command, and the JSON body of
// /v1/decide, turned into one request shape. Both say the same things as
// the CLI (`lifeboat approve <workflowId> <step> ...`): reject, skip and
// abort need a reason, which the audit log and the evidence keep.
import { z } from 'zod';
import { DECISIONS, StepIdSchema, STEP_IDS, type DecideUpdate, type DecisionKind } from '../recovery/contract';

export type ChatCommand =
  | { kind: 'help' }
  | { kind: 'status'; workflowId: string }
  | { kind: 'decide'; workflowId: string; step: DecideUpdate['step']; decision: DecisionKind; text?: string };

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const NEEDS_REASON: ReadonlySet<DecisionKind> = new Set<DecisionKind>(['reject', 'skip', 'abort']);

/** `approve <workflowId> <step> [comment...]`, `reject <workflowId> <step> <reason...>`, `status <workflowId>`, `help`. */
export function parseCommandText(text: string, command = '/lifeboat'): Parsed<ChatCommand> {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [verb = 'help', workflowId, step, ...rest] = words;
  const lower = verb.toLowerCase();
  if (lower === 'help') return { ok: true, value: { kind: 'help' } };
  if (lower === 'status') {
    if (!workflowId || step) return { ok: false, message: `usage: ${command} status <workflowId>` };
    return { ok: true, value: { kind: 'status', workflowId } };
  }
  if (!(DECISIONS as readonly string[]).includes(lower)) {
    return {
      ok: false,
      message: `unknown command "${verb}": expected ${DECISIONS.join(', ')}, status or help (${command} help)`,
    };
  }
  const decision = lower as DecisionKind;
  if (!workflowId || !step) return { ok: false, message: `usage: ${usage(decision, command)}` };
  return checkDecision({ workflowId, step, decision, text: rest.join(' ') }, command);
}

/** Validates what both endpoints share: the step id and, for reject/skip/abort, a reason. */
export function checkDecision(
  d: { workflowId: string; step: string; decision: DecisionKind; text?: string },
  command = '/lifeboat',
): Parsed<ChatCommand & { kind: 'decide' }> {
  const step = StepIdSchema.safeParse(d.step);
  if (!step.success) return { ok: false, message: `unknown step "${d.step}": expected one of ${STEP_IDS.join(', ')}` };
  const text = d.text?.trim() || undefined;
  if (NEEDS_REASON.has(d.decision) && !text) {
    return {
      ok: false,
      message: `${d.decision} needs a reason, which the audit log and the evidence keep: ${usage(d.decision, command)}`,
    };
  }
  if (text && text.length > 2000)
    return {
      ok: false,
      message: `the ${NEEDS_REASON.has(d.decision) ? 'reason' : 'comment'} is ${text.length} characters; at most 2000`,
    };
  return {
    ok: true,
    value: {
      kind: 'decide',
      workflowId: d.workflowId,
      step: step.data,
      decision: d.decision,
      ...(text ? { text } : {}),
    },
  };
}

function usage(decision: DecisionKind, command: string): string {
  return `${command} ${decision} <workflowId> <step> ${NEEDS_REASON.has(decision) ? '<reason...>' : '[comment...]'}`;
}

export function helpText(command: string, chatUser: string, approver: string | undefined): string {
  return [
    `${command} approve <workflowId> <step> [comment]   approve a step awaiting approval`,
    `${command} reject <workflowId> <step> <reason>     reject it: the run ends without promoting`,
    `${command} retry <workflowId> <step> [comment]     run a failed step again`,
    `${command} skip|abort <workflowId> <step> <reason> skip a failed step the runbook allows, or stop the run (writers stay fenced)`,
    `${command} status <workflowId>                     what the run is doing and what it waits for`,
    approver
      ? `you are ${chatUser}, deciding as ${approver}`
      : `you are ${chatUser}, not in Lifeboat's chat users table: ask whoever runs lifeboat chatops to map you to your approver name`,
  ].join('\n');
}

/** The body of POST /v1/decide. */
export const DecideBody = z.strictObject({
  workflowId: z.string().trim().min(1),
  step: z.string().trim().min(1),
  decision: z.enum(DECISIONS, { error: `expected one of ${DECISIONS.join(', ')}` }),
  user: z.string().trim().min(1),
  comment: z.string().optional(),
  reason: z.string().optional(),
});

/** The body of POST /v1/status. */
export const StatusBody = z.strictObject({
  workflowId: z.string().trim().min(1),
  user: z.string().trim().min(1),
});
