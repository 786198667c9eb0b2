// Who may retry, skip or abort a recovery. Shared by the workflow's rules
// (workflows/recovery/rules.ts) and by preflight, which names the operators
// in its failure before the workflow has the runbook. Runs in the workflow
// sandbox: no Node builtins.
import type { Runbook } from '../runbook/schema';

/**
 * Who may retry, skip or abort: everyone named in any approval policy (anyone
 * when none is configured). Before preflight has handed the runbook to the
 * workflow, the operators a failed preflight reported (`withoutRunbook`).
 */
export function operatorsOf(runbook: Runbook | undefined, withoutRunbook?: readonly string[]): string[] {
  if (!runbook && withoutRunbook) return [...withoutRunbook];
  const all = new Set<string>();
  for (const p of Object.values(runbook?.approvals ?? {})) if (p) for (const a of p.approvers) all.add(a);
  return [...all];
}
