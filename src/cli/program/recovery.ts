// `lifeboat recover`, `repair`, the decisions (approve, reject, retry, skip,
// abort), `retarget`, `status` and `pending`: starting a recovery or a
// repair and seeing it through (DESIGN.md §4, §9).
import { Option, type Command } from 'commander';
import { runCommand } from '../run';
import {
  commentOption,
  incidentOption,
  jsonOption,
  runbookOptions,
  startedRunOptions,
  targetOptions,
  temporalOptions,
} from './options';

const DECISIONS = {
  approve: 'approve a step waiting for approval',
  reject: 'reject a step waiting for approval (needs --reason); the run ends without promoting',
  retry: 'run a failed step again',
  skip: 'skip a failed step the runbook marks skippable (needs --reason)',
  abort: 'abort the run at a failed step (needs --reason); writers stay fenced',
} as const;

export function declareRecovery(program: Command): void {
  const recover = targetOptions(
    runbookOptions(
      program
        .command('recover')
        .description(
          'start `recoverToPointInTime`: restore the newest base backup before the target, replay WAL to it, ' +
            'check invariants, promote and resume traffic, pausing for approvals; give exactly one --to-... target',
        ),
    ),
  )
    .addOption(incidentOption())
    .option('--reason <text>', 'why the recovery is run, e.g. "bad UPDATE on orders"')
    .addOption(
      new Option('--mode <mode>', "where to restore (default: the runbook's restore.mode)").choices([
        'side-by-side',
        'in-place',
      ]),
    )
    .option('--dry-run', 'preflight, forensics and invariants on a side-by-side restore; no gate, no traffic')
    .option('--backup <id>', 'restore this base backup instead of the one preflight would choose')
    .option(
      '--repo-index <n|name>',
      'runbook repositories: read only this repository (position from 1, or its name) instead of the first that serves, falling back in order',
    )
    .option(
      '--concurrent',
      'run even while another recovery of this runbook runs (without it, a second one is refused with RECOVERY_ALREADY_RUNNING naming the first)',
    );
  temporalOptions(startedRunOptions(recover, 'recover')).action((opts) =>
    runCommand(() => import('../commands/recover'), opts),
  );

  const repair = runbookOptions(
    program
      .command('repair')
      .description(
        'start `repairFromPointInTime`: repair rows damaged by a bad statement WITHOUT failover. An isolated copy (the drill site) ' +
          'is restored to --before and, with --after, replayed on to the end of the bad statement; every row of --tables is compared ' +
          'with the live primary: damaged (changed by the incident, untouched since) and deleted rows are restored after approve-repair, ' +
          'in one audited transaction per table that skips any row changed meanwhile; rows changed since the incident are conflicts, ' +
          'left unless an approver includes them; new rows and other tables are never touched',
      ),
    'runbook name (in --runbooks-dir) or path to a runbook YAML file (needs a drill: section)',
  )
    .option('--tables <t,...>', 'tables to repair, comma-separated, e.g. public.orders (each needs a primary key)')
    .option(
      '--where <sql>',
      'only rows matching this predicate, run as given on the copy and the primary in a READ ONLY transaction, e.g. "status = \'canceled\'"',
    )
    .option(
      '--before <target>',
      'just before the incident: 2026-06-04T14:31:59Z (with its zone), name:<restore point>, lsn:0/3000060 or xid:7421',
    )
    .option(
      '--after <target>',
      'right after the bad statement (same forms; e.g. xid:<its transaction>): without it nothing is classified safe, every difference is a candidate',
    )
    .addOption(incidentOption())
    .option('--reason <text>', 'why, e.g. "bad UPDATE on orders"')
    .option('--dry-run', 'stop after the diff: counts, samples and the exact SQL, nothing written to the primary')
    .option('--keep-copy', 'leave the copy running (paused, loopback only) after the run, to read from by hand');
  temporalOptions(
    startedRunOptions(repair, 'repair').addHelpText(
      'after',
      "\nExample (the seed incident: UPDATE orders SET status = 'canceled' WHERE status = 'pending'):\n" +
        '  lifeboat repair --runbook orders --tables public.orders --before 2026-06-04T14:31:59Z --after xid:7421 --dry-run\n' +
        '  lifeboat repair --runbook orders --tables public.orders --before 2026-06-04T14:31:59Z --after xid:7421 --follow\n' +
        '  lifeboat approve <workflowId> approve-repair --as alice [--include changedSince]\n',
    ),
  ).action((opts) => runCommand(() => import('../commands/repair'), opts));

  for (const [decision, description] of Object.entries(DECISIONS)) {
    temporalOptions(
      program
        .command(decision)
        .description(`${description} (the \`decide\` update: prints the workflow's answer)`)
        .argument('<workflowId>', 'the recovery run (printed by lifeboat recover)')
        .argument('<step>', 'step id, e.g. approve-promote (lifeboat status shows the one waiting)')
        .option('--as <who>', "who decides: a name in the runbook's approvers, written to the audit log")
        .addOption(commentOption())
        .option('--reason <text>', 'why (required for reject, skip and abort)')
        .option(
          '--override',
          'approve only: promote although an invariant failed on the paused copy (needs --comment with the reason, kept in the evidence)',
        )
        .option(
          '--include <classes>',
          'approve approve-repair only: also restore changedSince (conflicts: rows changed since the incident) or candidate rows',
        )
        .option(
          '--signal',
          'send the signal instead of the update, like the Temporal UI: no answer, check with lifeboat status',
        )
        .addOption(jsonOption('print the answer as JSON')),
    ).action((workflowId: string, step: string, opts) =>
      runCommand(() => import('../commands/decide'), { ...opts, decision, workflowId, step }),
    );
  }

  temporalOptions(
    targetOptions(
      program
        .command('retarget')
        .description(
          'move the target of a run waiting at approve-promote (later continues the replay, earlier restores again) or whose replay-wal failed (restores again)',
        )
        .argument('<workflowId>', 'the recovery run'),
    )
      .option('--as <who>', "who decides: a name in the runbook's approvers")
      .addOption(commentOption())
      .addOption(jsonOption('print the outcome and the status as JSON')),
  ).action((workflowId: string, opts) => runCommand(() => import('../commands/retarget'), { ...opts, workflowId }));

  temporalOptions(
    program
      .command('status')
      .description(
        'a recovery run: every step with its state and duration, restore and replay progress, the decision it waits for ' +
          'and the commands to give it; exits 1 when the run ended without success',
      )
      .argument('<workflowId>', 'the recovery run')
      .option('--watch', 'redraw until the run ends')
      .option('--interval <s>', 'with --watch: seconds between looks', '2')
      .addOption(jsonOption('print {status, progress, closed, result} as JSON (with --watch: one line per change)')),
  ).action((workflowId: string, opts) => runCommand(() => import('../commands/status'), { ...opts, workflowId }));

  temporalOptions(
    program
      .command('pending')
      .description(
        'running recoveries waiting for a decision (an approval, or a failed step waiting for retry/skip/abort): ' +
          'the step, who may decide, how many approvals are still needed, since when, and the command to give it',
      )
      .option('--runbook <name>', 'only recoveries of this runbook')
      .addOption(jsonOption('print the list as JSON'))
      .option(
        '--query',
        'print the visibility query instead (paste it into the Temporal UI\'s workflow list and save it as a view: "waiting for a person")',
      ),
  ).action((opts) => runCommand(() => import('../commands/pending'), opts));
}
