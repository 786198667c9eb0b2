// Where resume-traffic must run: the worker that can write the pgbouncer
// databases file (traffic.pgbouncer.host), else the restore host's. Free of
// Node builtins so the workflow can route with it.
import type { Runbook } from '../runbook/schema';

export function trafficHost(runbook: Runbook): string {
  const traffic = runbook.traffic;
  if (traffic && 'pgbouncer' in traffic && traffic.pgbouncer.host) return traffic.pgbouncer.host;
  return runbook.restore.host;
}
