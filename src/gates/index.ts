// Gates: the switches a recovery flips so that nothing writes to, works on or
// publishes from a database while it is being replaced (DESIGN.md §4.1 steps
// 4-6, 11, 15-16). Each kind is one file behind `setGateOn`: a row in the gate
// table (row-gate.ts), or the writer gate, which also makes the application
// roles read-only and proves it (writer-gate.ts). sql.ts holds the
// connection and error plumbing the SQL activities share.
import { LifeboatError } from '../errors';
import type { GateResult, StepId } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { primaryClientConfig, restoredClientConfig } from '../pg/connect';
import { setRowGate } from './row-gate';
import type { Endpoint } from './sql';
import { setWriterGate } from './writer-gate';

export type GateKind = 'writers' | 'backgroundJobs' | 'outbox';
export type GateWhere = 'primary' | 'restored';

/** The recovery step that sets this gate this way on the old primary (for skip hints). */
function stepOf(kind: GateKind, enabled: boolean): StepId {
  if (kind === 'writers') return enabled ? 'resume-traffic' : 'disable-writers';
  if (kind === 'backgroundJobs') return enabled ? 'enable-background-jobs' : 'disable-background-jobs';
  return enabled ? 'resume-outbox' : 'pause-outbox';
}

/** The old primary: it may be the very thing that died, so skipping is offered. */
export function primaryEndpoint(runbook: Runbook, skip?: { workflowId: string; step: StepId }): Endpoint {
  const p = runbook.cluster.primary;
  const hints = [
    `the primary (${p.host}:${p.port}) may be the thing that died; if it is down or unreachable, nothing can write to it either`,
    'check it is running and reachable from this worker, then retry the step',
  ];
  if (skip)
    hints.push(
      `or skip the step with a reason: lifeboat skip ${skip.workflowId} ${skip.step} --as <you> --reason "<why>"`,
    );
  return { config: primaryClientConfig(runbook), label: 'the primary', unreachableHints: hints };
}

/** The restored (paused or promoted) instance on the restore host. */
export function restoredEndpoint(runbook: Runbook, overrides: { database?: string } = {}): Endpoint {
  const r = runbook.restore;
  return {
    config: restoredClientConfig(runbook, overrides),
    label: 'the restored instance',
    unreachableHints: [
      `check that PostgreSQL runs on ${r.host} with data directory ${r.dataDir} and listens on ${r.address}:${r.port}`,
      'the replay-wal step starts it; see its log in the data directory',
    ],
  };
}

function missing(runbook: Runbook, field: string, example: string): LifeboatError {
  return new LifeboatError('RUNBOOK_INVALID', `runbook ${runbook.name} has no ${field}, so this gate cannot be set`, {
    hints: [
      `add it to the runbook, e.g. ${example}`,
      'or skip the step with a reason if the application has no such gate',
    ],
  });
}

export async function setGateOn(
  runbook: Runbook,
  input: { gate: GateKind; where: GateWhere; enabled: boolean; workflowId?: string },
): Promise<GateResult> {
  const gates = runbook.gates;
  if (!gates)
    throw missing(
      runbook,
      'gates section',
      'gates: { table: system_gate, writers: { gate: writers, readOnlyRoles: [app] } }',
    );
  const endpoint =
    input.where === 'primary'
      ? primaryEndpoint(
          runbook,
          input.workflowId ? { workflowId: input.workflowId, step: stepOf(input.gate, input.enabled) } : undefined,
        )
      : restoredEndpoint(runbook);
  switch (input.gate) {
    case 'writers':
      return setWriterGate(
        endpoint,
        {
          table: gates.table,
          gate: gates.writers.gate,
          roles: gates.writers.readOnlyRoles,
          proofPassword: proofPassword(gates.writers.proofPasswordEnv),
        },
        input.enabled,
      );
    case 'backgroundJobs':
      if (!gates.backgroundJobs)
        throw missing(runbook, 'gates.backgroundJobs', 'backgroundJobs: { gate: background_jobs }');
      return setRowGate(endpoint, gates.table, gates.backgroundJobs.gate, input.enabled);
    case 'outbox':
      if (!gates.outbox)
        throw missing(
          runbook,
          'gates.outbox',
          'outbox: { gate: outbox_publisher, table: outbox, idColumn: id, publishedColumn: published_at }',
        );
      return setRowGate(endpoint, gates.table, gates.outbox.gate, input.enabled);
    default: {
      const unknown: never = input.gate;
      throw new LifeboatError('INPUT_INVALID', `unknown gate ${String(unknown)}`, {
        hints: ['expected writers, backgroundJobs or outbox'],
      });
    }
  }
}

/** The proof login's password, read here in the worker; never logged or returned. */
function proofPassword(env: string | undefined): string | undefined {
  if (!env) return undefined;
  const value = process.env[env];
  if (value === undefined) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `environment variable ${env} (gates.writers.proofPasswordEnv) is not set in this worker`,
      {
        hints: [
          'it holds the password of the application role the writer gate logs in as to prove writes are refused',
          "set it in the worker's environment (never in the runbook)",
        ],
      },
    );
  }
  return value;
}
