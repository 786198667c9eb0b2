// Whether something already listens on the port an instance is about to
// start on, and what: a drill must refuse a port that is someone else's
// with a message naming the owner, not fail later inside pg_ctl's log.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';

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
  if (!m) return { description: out.trim() ? 'a process ss does not name (another user\'s?)' : 'an unknown process' };
  const name = m[1]!;
  const pid = Number(m[2]);
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (t) => t.split('\0').filter(Boolean),
    () => [] as string[],
  );
  const d = cmdline.indexOf('-D');
  const dataDir = d >= 0 ? cmdline[d + 1] : undefined;
  return { description: `${name} (pid ${pid}${dataDir ? `, data directory ${dataDir}` : ''})`, pid, ...(dataDir ? { dataDir } : {}) };
}
