// `lifeboat schedules [list|pause|unpause|trigger|delete]`: the Temporal
// Schedules Lifeboat made (lifeboat-drill-<runbook>, lifeboat-backup-<runbook>).
// Each action is the plain Temporal operation, so what the UI shows and what
// this prints are the same schedule.
import { connectClient } from '../../client/temporal';
import { schedulesTable } from '../schedules-view';
import { describeSchedule, listSchedules, scheduleIdFromArgs } from '../../schedules/schedules';
import { temporalTarget, type TemporalOptions } from '../context';
import { printJson } from '../run';

type Action = 'list' | 'pause' | 'unpause' | 'trigger' | 'delete';

export async function run(
  opts: TemporalOptions & { action: Action; target?: string[]; json?: boolean; note?: string },
): Promise<number> {
  const id = opts.action === 'list' ? undefined : scheduleIdFromArgs(opts.target ?? []);
  const temporal = await temporalTarget(opts);
  const client = await connectClient(temporal);
  try {
    if (opts.action === 'list' || !id) {
      const list = await listSchedules(client);
      if (opts.json) printJson(list);
      else process.stdout.write(`${schedulesTable(list)}\n`);
      return 0;
    }
    // Fails with "no schedule ..." and hints before acting on a wrong name.
    const before = await describeSchedule(client, id);
    const handle = client.schedule.getHandle(id);
    const by = `by ${process.env.USER ?? 'someone'} with lifeboat schedules ${opts.action}`;
    let said: string;
    switch (opts.action) {
      case 'pause':
        await handle.pause(opts.note ?? `paused ${by}`);
        said = `schedule ${id} paused: no ${before.workflowType} starts until lifeboat schedules unpause ${before.runbook} ${before.kind}`;
        break;
      case 'unpause':
        await handle.unpause(opts.note ?? `unpaused ${by}`);
        said = `schedule ${id} unpaused`;
        break;
      case 'trigger':
        // Overlap SKIP here too: a trigger while a run is going does nothing rather than run two at once.
        await handle.trigger('SKIP');
        said =
          before.running.length > 0
            ? `schedule ${id}: ${before.running.join(', ')} is still running; the trigger is skipped (overlap policy skip)`
            : `schedule ${id} triggered: ${before.workflowType} starts now; lifeboat schedules shows its result`;
        break;
      case 'delete':
        await handle.delete();
        said = `schedule ${id} deleted; runs it started are not touched`;
        break;
    }
    const after = opts.action === 'delete' ? undefined : await describeSchedule(client, id);
    if (opts.json) printJson({ scheduleId: id, action: opts.action, schedule: after ?? null });
    else process.stdout.write(`${said}\n${after ? `${schedulesTable([after])}\n` : ''}`);
    return 0;
  } finally {
    await client.connection.close();
  }
}
