// `lifeboat retarget <workflowId> --to-... --as <who>`: move the target of a
// run waiting at approve-promote (DESIGN.md §4.1 step 10): a later target
// continues the replay, an earlier one restores again; or of a run whose
// replay-wal failed (a target past the archive's end), which restores
// again. A signal gets no
// answer, so the status is read right after and says whether it was taken.
import { LifeboatError } from '../../errors';
import { RetargetSignal } from '../../recovery/contract';
import { retargetSignal } from '../../recovery/messages';
import type { TemporalOptions } from '../context';
import { printJson } from '../run';
import { retargetOutcome } from '../retarget-view';
import { renderStatus } from '../status-view';
import { targetFromFlags, whoFromFlag, type TargetFlags } from '../target-options';
import { fetchSnapshot, openRun, operatorError, useColor } from './status';

type Options = TemporalOptions & TargetFlags & { workflowId: string; as?: string; comment?: string; json?: boolean };

export async function run(opts: Options): Promise<number> {
  const target = targetFromFlags(opts, 'retarget');
  const by = whoFromFlag(opts.as, 'retarget');
  const parsed = RetargetSignal.safeParse({ by, target, ...(opts.comment ? { comment: opts.comment } : {}) });
  if (!parsed.success) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `retarget: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }

  const recovery = await openRun(opts, opts.workflowId);
  try {
    await recovery.handle.signal(retargetSignal, parsed.data).catch((err: unknown) => {
      throw operatorError(err, recovery);
    });
    // Queries are answered after the workflow task that takes the signal, so
    // this look already shows the workflow's reaction when a worker is up.
    const snap = await fetchSnapshot(recovery);
    const outcome = retargetOutcome(recovery.workflowId, snap.status, parsed.data.target, by);
    if (opts.json)
      printJson({
        sent: true,
        target: parsed.data.target,
        by,
        taken: outcome.taken ?? null,
        outcome: outcome.lines,
        ...snap,
      });
    else {
      process.stdout.write(
        [
          `sent retarget by ${by} to ${recovery.workflowId}`,
          ...outcome.lines.map((l) => `  ${l}`),
          '',
          renderStatus(snap, { now: new Date(), color: useColor() }),
        ].join('\n') + '\n',
      );
    }
    return outcome.taken === false ? 1 : 0;
  } finally {
    await recovery.client.connection.close();
  }
}
