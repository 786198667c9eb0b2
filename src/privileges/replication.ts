// The one need no SQL can grant: pg_basebackup's replication connection must
// be allowed by a `replication` line of the primary's pg_hba.conf (the role's
// REPLICATION attribute alone is not enough). doctor tries what
// pg_basebackup does first, a walsender login from this host with the
// runbook's credentials (psql, replication=true, IDENTIFY_SYSTEM), and names
// the line to add when it is refused.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { primaryLibpqEnv } from '../pg/connect';
import type { Runbook } from '../runbook/schema';
import type { MissingPrivilege } from './check';

const run = promisify(execFile);

export async function checkReplicationLogin(runbook: Runbook): Promise<{ missing?: MissingPrivilege; note?: string }> {
  const p = runbook.cluster.primary;
  try {
    await run(
      `${runbook.cluster.pgBin}/psql`,
      ['-X', '-A', '-t', '-d', `dbname=${quoteConninfo(p.database)} replication=true`, '-c', 'IDENTIFY_SYSTEM'],
      {
        env: { ...primaryLibpqEnv(runbook), PATH: process.env.PATH ?? '' },
        timeout: 15_000,
      },
    );
    return {};
  } catch (err) {
    const text = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
    if (/no pg_hba\.conf entry for replication connection/.test(text)) {
      const from = /from host "([^"]+)"/.exec(text)?.[1] ?? "<this worker's address>";
      return {
        missing: {
          key: 'pg_hba:replication',
          what: `a pg_hba.conf line letting ${p.user} connect for replication from ${from} (pg_basebackup)`,
          fix: `# in pg_hba.conf on ${p.host}, before any line that would match first; then, as a superuser: SELECT pg_reload_conf();\nhost  replication  ${p.user}  ${from.includes(':') ? `${from}/128` : `${from}/32`}  scram-sha-256`,
          uses: ['backup'],
          detail: text.replace(/^psql: error: /, ''),
        },
      };
    }
    // Refused for another reason (REPLICATION missing is reported on its own; a password; the server down): say it, no fix guessed.
    return {
      note: `the replication login pg_basebackup makes was not tried to the end: ${text.replace(/^psql: error: /, '').split('\n')[0]}`,
    };
  }
}

/** A conninfo value: quoted when it holds spaces or quotes. */
function quoteConninfo(value: string): string {
  return /^[^\s'\\]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
