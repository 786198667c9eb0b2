// What `lifeboat retarget` tells the operator after the signal: whether the
// run took the new target, ignored it (and why), or has not shown it yet.
import { describeTarget, type RecoveryStatus, type Target } from '../recovery/contract';

export interface RetargetOutcome {
  /** true: the run now recovers to the new target; false: the workflow ignored it; undefined: not seen yet. */
  taken?: boolean;
  lines: string[];
}

/** What the workflow will do after a retarget signal, read from its status right after. */
export function retargetOutcome(
  workflowId: string,
  status: RecoveryStatus | undefined,
  sent: Target,
  by: string,
): RetargetOutcome {
  if (!status) return { lines: [`the status query did not answer; check with lifeboat status ${workflowId}`] };
  if (JSON.stringify(status.target) === JSON.stringify(sent)) {
    const next = status.steps.find((s) => s.state !== 'done' && s.state !== 'skipped');
    return {
      taken: true,
      lines: [
        `taken: the run now recovers to ${describeTarget(status.target)}`,
        ...(next ? [`next: ${next.id} (${next.title})`] : []),
      ],
    };
  }
  const ignored = [...status.ignored]
    .reverse()
    .find((m) => m.name === 'retarget' && (m.by === undefined || m.by === by));
  if (ignored)
    return {
      taken: false,
      lines: [`ignored: ${ignored.why}`, `the run still recovers to ${describeTarget(status.target)}`],
    };
  return {
    lines: [
      `not taken yet: the run still recovers to ${describeTarget(status.target)}; check with lifeboat status ${workflowId}`,
    ],
  };
}
