// Whether something already listens on the port an instance is about to
// start on, and what: a restore or a drill must refuse a port that is
// someone else's with a message naming the owner, not fail later inside
// pg_ctl's log (or, for a recovery, after writers were fenced).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { readMarker } from './marker';
import { postmasterRunning } from './postmaster';
import type { RestoreSite } from './site';

/** True when a TCP connection to address:port is accepted. */
export function portAnswers(address: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // silent but not refused: something holds it
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED'));
  });
}

export interface PortOwner {
  /** "postgres (pid 1234, data directory /srv/pg)" or "node (pid 99)"; "an unknown process" when ss cannot tell. */
  description: string;
  pid?: number;
  dataDir?: string;
}

/** What listens on the port, as `ss -ltnp` and /proc tell (best effort: another user's process may show no name). */
export async function portOwner(port: number): Promise<PortOwner> {
  const out = await new Promise<string>((resolve) => {
    execFile('ss', ['-H', '-ltnp', `sport = :${port}`], { timeout: 5000 }, (err, stdout) => resolve(err ? '' : stdout));
  });
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(out);
  if (!m) return { description: out.trim() ? "a process ss does not name (another user's?)" : 'an unknown process' };
  const pid = Number(m[2]);
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (t) => t.split('\0').filter(Boolean),
    () => [] as string[],
  );
  const name = programName(cmdline) ?? m[1]!;
  const d = cmdline.indexOf('-D');
  const dataDir = d >= 0 ? cmdline[d + 1] : undefined;
  return {
    description: `${name} (pid ${pid}${dataDir ? `, data directory ${dataDir}` : ''})`,
    pid,
    ...(dataDir ? { dataDir } : {}),
  };
}

/**
 * The program's name from its command line: ss names the listening thread
 * (its comm), and Node 24 names its main thread "MainThread", which tells an
 * operator nothing. Undefined when the process rewrote its title (a
 * "postgres: checkpointer" child), so ss's name stands.
 */
function programName(cmdline: string[]): string | undefined {
  const argv0 = cmdline[0];
  if (!argv0 || /[\s:]/.test(argv0)) return undefined;
  return path.basename(argv0);
}

/**
 * Refuses (PORT_IN_USE) the site's port when another listener holds it,
 * unless it is this workflow's own postmaster in the site's directory (a
 * retry). Reads only: connect, ss, /proc, the marker. `then`: what follows
 * the operator's fix ("start the recovery again" in preflight).
 */
export async function requireFreePort(site: RestoreSite, workflowId: string, then = 'retry the step'): Promise<void> {
  if (!(await portAnswers(site.address, site.port))) return;
  const marker = await readMarker(site.dataDir);
  if (marker?.workflowId === workflowId && (await postmasterRunning(site.pg))) return;
  const owner = await portOwner(site.port);
  const { osUser, pgBin } = site.pg;
  const theirs = owner.dataDir ? await readMarker(owner.dataDir) : undefined;
  let whatToDo: string;
  if (owner.dataDir && theirs?.state === 'promoted') {
    whatToDo = `it is the copy workflow ${theirs.workflowId} restored and promoted at ${theirs.promotedAt ?? theirs.at} (data directory ${owner.dataDir}): it may be serving as the primary now, so stop it (as ${osUser}: ${pgBin}/pg_ctl stop -D ${owner.dataDir} -m fast) only once clients no longer use it, or set ${site.field}.port in the runbook to a port nothing else uses on host ${site.host}; then ${then}`;
  } else if (owner.dataDir && theirs) {
    whatToDo = `it is a copy Lifeboat restored for workflow ${theirs.workflowId} (data directory ${owner.dataDir}, never promoted); stop it (as ${osUser}): ${pgBin}/pg_ctl stop -D ${owner.dataDir} -m fast, then ${then}`;
  } else if (owner.dataDir) {
    whatToDo = `it is a PostgreSQL with data directory ${owner.dataDir} that Lifeboat did not restore: set ${site.field}.port in the runbook to a port nothing else uses on host ${site.host} (or stop that server, if it is truly not needed: ${pgBin}/pg_ctl stop -D ${owner.dataDir} -m fast as ${osUser}); then ${then}`;
  } else {
    whatToDo = `set ${site.field}.port in the runbook to a port nothing else uses on host ${site.host}, or stop what listens there (see: ss -ltnp 'sport = :${site.port}'); then ${then}`;
  }
  throw new LifeboatError(
    'PORT_IN_USE',
    `${site.field}.port ${site.port} on ${site.address} is already in use by ${owner.description}, so ${site.instance === 'drill' ? 'the drill copy' : 'the restored copy'} cannot start there`,
    {
      hints: [
        `nothing was ${site.instance === 'restore' ? 'fenced, ' : ''}moved, downloaded or started; the process on that port was not touched`,
        whatToDo,
      ],
      details: { port: site.port, owner: owner.description },
    },
  );
}
