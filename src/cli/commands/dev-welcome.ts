// What `lifeboat dev` prints once the sandbox is up: where each piece is,
// how to play the incident, and what else to try.
import * as path from 'node:path';
import { TASK_QUEUE } from '../../runbook/schema';
import { DEMO_DATABASE, cliPath, stateDirFlag, type SandboxState } from '../../dev/sandbox-state';
import { APPROVERS } from './dev-demo-data';
import type { PromotedNote } from './dev-sandbox';

export function printWelcome(p: {
  sandbox: SandboxState;
  state: string;
  upstream: string;
  cached: number | undefined;
  promoted: PromotedNote | undefined;
}): void {
  const { sandbox: s, state, promoted } = p;
  const cli = cliPath();
  const ui = `http://127.0.0.1:${s.uiPort}`;
  const env = `LIFEBOAT_RUNBOOKS_DIR=${s.runbooksDir} TEMPORAL_ADDRESS=${s.temporalAddress} LIFEBOAT_UI_URL=${ui}`;
  const behind =
    p.upstream === `127.0.0.1:${s.pgPort}`
      ? 'the sandbox primary'
      : p.upstream === `127.0.0.1:${s.restorePort}`
        ? 'the promoted copy'
        : 'see its databases file';
  const note = promoted
    ? `
Note: ${promoted.dataDir} holds the copy that recovery ${promoted.marker.workflowId}
promoted at ${promoted.marker.promotedAt ?? promoted.marker.at}, on port ${s.restorePort} (${promoted.running ? 'running' : 'NOT running: see above'}). Lifeboat leaves it in place.
The sandbox primary is the old primary that recovery fenced. To play the incident again,
stop (Ctrl-C), move the sandbox away (mv ${state} ${state}.old) and start again.
`
    : '';
  process.stdout.write(`
Lifeboat sandbox is up.

  Temporal Web UI     ${ui}   (workflows, task queue "${TASK_QUEUE}")
  Temporal frontend   ${s.temporalAddress}
  Sandbox primary     postgresql://app@127.0.0.1:${s.pgPort}/${DEMO_DATABASE}   (tables orders, system_gate, outbox)
  pgbouncer           postgresql://app@127.0.0.1:${s.pgbouncerPort}/${DEMO_DATABASE}   (the application's address; now ${p.upstream}, ${behind})
  Redis cache         redis://127.0.0.1:${s.redisPort}   (${p.cached ?? 0} keys orders:<id>)
  Repository          file://${path.join(state, 'repo')}   (cluster "demo")
  Runbook             ${path.join(s.runbooksDir, 'demo.yaml')}   (approvers ${APPROVERS.join(' and ')})
${note}
Play the incident (a bad UPDATE cancels every pending order), then recover from the Temporal UI:
  ${cli} dev-incident${stateDirFlag(state)}       # prints the target time and every step

Also try, in another terminal:
  export ${env}
  ${cli} backups --runbook demo          # the catalog
  ${cli} check --runbook demo            # archiver health and WAL chain
  ${cli} backup --runbook demo           # another verified base backup, watch it in the UI
  ${cli} expire --runbook demo --dry-run # what retention would remove
  psql -h 127.0.0.1 -p ${s.pgbouncerPort} -U app ${DEMO_DATABASE} -c "select status, count(*) from orders group by 1"

Ctrl-C stops everything; the sandbox in ${state} is kept for next time.
`);
}
