// `lifeboat standby build|status --runbook <name>` (DESIGN.md §4.4): run on
// the standby's host (the runbook's restore host), as a user that may act as
// cluster.osUser, like the host worker. build restores the newest usable
// backup into standby.dataDir (the old copy moved aside, never deleted) and
// starts it replaying from the archive `delay` behind; a healthy standby is
// left running, a stopped one restarted. status prints where it is; exit 1
// when it is not healthy (usable from cron and monitoring).
import { buildStandby } from '../../standby/build';
import { readStandbyStatus, standbyLine, type StandbyStatus } from '../../standby/status';
import { requireRunbook, type RepoOptions } from '../context';
import { formatBytes } from '../format';
import { EXIT, printJson } from '../run';

export async function run(
  opts: RepoOptions & { action: 'build' | 'status'; json?: boolean; force?: boolean },
): Promise<number> {
  const runbook = await requireRunbook(opts, `standby ${opts.action}`);
  if (opts.action === 'status') {
    const status = await readStandbyStatus(runbook);
    if (opts.json) printJson(status);
    else process.stdout.write(statusText(status));
    return status.healthy ? EXIT.ok : EXIT.failed;
  }
  let last = '';
  const result = await buildStandby(runbook, {
    ...(opts.force ? { force: true } : {}),
    onProgress: (p) => {
      const line =
        'text' in p && p.text
          ? p.text
          : 'bytes' in p
            ? `${p.phase}: ${formatBytes(p.bytes)}${p.totalBytes ? ` of ${formatBytes(p.totalBytes)}` : ''}`
            : p.phase;
      if (line !== last && !opts.json) process.stderr.write(`  ${line}\n`);
      last = line;
    },
  });
  if (opts.json) printJson(result);
  else {
    process.stdout.write(
      `standby ${result.action} (${result.why})${result.movedAside ? `; the previous copy was moved to ${result.movedAside}` : ''}\n${statusText(result.status)}`,
    );
  }
  return EXIT.ok;
}

function statusText(s: StandbyStatus): string {
  const out = [standbyLine(s)];
  for (const w of s.warnings) out.push(`WARNING: ${w}`);
  if (s.fellOff) out.push(`HINT: rebuild it: lifeboat standby build (it moves the old copy aside)`);
  if (s.logFile) out.push(`server log: ${s.logFile}`);
  return `${out.join('\n')}\n`;
}
