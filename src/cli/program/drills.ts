// `lifeboat drill`, `schedules ...`, `evidence`, `report` and `checkpoint`:
// proving recoveries work before they are needed, and what auditors read
// (DESIGN.md §4, §7, §9).
import { Option, type Command } from 'commander';
import { runCommand } from '../run';
import { jsonOption, noWaitOption, repoOptions, runbookOptions, targetOptions, temporalOptions } from './options';

const SCHEDULE_ACTIONS = {
  pause: 'pause a schedule: no run starts until it is unpaused (runs going on are not touched)',
  unpause: 'unpause a paused schedule',
  trigger: 'start the scheduled workflow now (skipped when its previous run is still going)',
  delete: 'delete a schedule; runs it started are not touched',
} as const;

export function declareDrills(program: Command): void {
  temporalOptions(
    targetOptions(
      runbookOptions(
        program
          .command('drill')
          .description(
            'start `restoreDrill` and wait: an isolated restore to a random time in drill.targetWindow (or the --to-... target), ' +
              'invariants, promotion in isolation, a smoke write, measured RTO and RPO, evidence, teardown; no gate, no traffic. ' +
              'Prints RTO with its phases, RPO, WAL segments, the verdict and the evidence key; exits 1 when the drill failed',
          ),
      ),
    )
      .option('--keep', 'leave the drill instance running after the drill (for a look), instead of tearing it down')
      .option(
        '--repo-index <n|name>',
        "runbook repositories: restore the drill's copy from this repository only (position from 1, or its name)",
      )
      .option(
        '--from-standby',
        "restore the drill's copy from a clone of the runbook's warm standby (pg_basebackup from it while it keeps replaying; it is never taken) instead of a backup; a standby that cannot serve (unhealthy, another host, past the target) falls back to the backup, with the reason in the evidence",
      )
      .addOption(noWaitOption())
      .addOption(jsonOption('print {workflowId, runId, evidenceKey, evidence} as JSON'))
      .option(
        '--schedule <cron>',
        "instead: create or update the Temporal Schedule lifeboat-drill-<runbook> (cron in UTC, e.g. '0 3 * * *' or '@daily'); a run still going when the next is due is skipped",
      ),
  ).action((opts) => runCommand(() => import('../commands/drill'), opts));

  const schedulesCmd = temporalOptions(
    program
      .command('schedules')
      .description(
        'the Temporal Schedules Lifeboat made (lifeboat-drill-<runbook>, lifeboat-backup-<runbook>): kind, runbook, cron, ' +
          'paused, next run and the last run with its result. They are plain Temporal schedules: the Temporal UI pauses, triggers and deletes them too',
      )
      .addOption(jsonOption('print the schedules as JSON')),
  ).action((opts) => runCommand(() => import('../commands/schedules'), { ...opts, action: 'list' }));

  for (const [action, description] of Object.entries(SCHEDULE_ACTIONS)) {
    temporalOptions(
      schedulesCmd
        .command(action)
        .description(description)
        .argument(
          '<schedule...>',
          'a runbook and a kind (orders drill, orders backup) or a schedule id (lifeboat-drill-orders)',
        )
        .addOption(jsonOption('print the schedule afterwards as JSON')),
    )
      .addOption(
        new Option('--note <text>', 'the note Temporal keeps with the pause or unpause').hideHelp(
          action !== 'pause' && action !== 'unpause',
        ),
      )
      // Options given before the action (lifeboat schedules --address X pause ...) land on the parent.
      .action((target: string[], opts: Record<string, unknown>) =>
        runCommand(() => import('../commands/schedules'), { ...schedulesCmd.opts(), ...opts, action, target }),
      );
  }

  repoOptions(
    program
      .command('evidence')
      .description(
        "the evidence history of a runbook's cluster: every recovery and drill recorded in <cluster>/evidence/, oldest first, " +
          'with kind, start, target, RTO, RPO, verdict and run id',
      )
      .addOption(jsonOption('print the records as JSON')),
  ).action((opts) => runCommand(() => import('../commands/evidence'), opts));

  repoOptions(
    program
      .command('report')
      .description(
        'write a self-contained HTML report for auditors: RTO and RPO of drills and recoveries over time against the ' +
          'objectives (an inline SVG chart), the table of runs, and the approvals of the last recovery',
      )
      .option('--out <file>', 'where to write the HTML page', 'lifeboat-report.html'),
  ).action((opts) => runCommand(() => import('../commands/report'), opts));

  temporalOptions(
    runbookOptions(
      program
        .command('checkpoint')
        .description(
          'start `migrationCheckpoint` before a risky change: checks (read-only) that the archiver is healthy within the RPO and ' +
            'a verified backup with an unbroken WAL chain exists, then pg_create_restore_point(<label>), switches the WAL segment ' +
            'and waits until it is archived; prints how to recover to it. Refuses, with the reason, when a check fails',
        ),
    )
      .option('--label <label>', 'the restore point name, at most 63 bytes, e.g. before-migration-0042')
      .addOption(jsonOption('print {name, lsn, time, backupId, segment} and the recovery input as JSON')),
  ).action((opts) => runCommand(() => import('../commands/checkpoint'), opts));
}
