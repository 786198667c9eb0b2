// restore_command's cost per call, read from the restored copy's server log.
// With log_min_messages = debug3 (verified on PostgreSQL 15: the line is
// DEBUG3, not DEBUG2) the startup process logs `executing restore command
// "..."` right before it runs the command, then `restored log file "X" from
// archive` (LOG) when it succeeded, or `could not restore file "X" from
// archive: ...` (DEBUG2) when the file is not there (history probes, the
// end of the archive). With log_line_prefix '%m [%p] ' each line carries the
// millisecond and the pid, so a call's latency is the time between its two
// lines of one pid: the command, PostgreSQL's fork and wait included, which
// is what replay waits for.
import { readFileSync } from 'node:fs';

export interface RestoreCalls {
  /** Calls that handed over a file. */
  served: number[];
  /** Calls that found nothing (a missing .history, the end of the archive). */
  missed: number[];
}

const LINE = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[(\d+)\] (\w+):\s+(.*)$/;

/** The calls logged in `logFile` from byte `from` on (a copy started again appends to its log). */
export function restoreCalls(logFile: string, from = 0): RestoreCalls {
  const open = new Map<string, number>();
  const calls: RestoreCalls = { served: [], missed: [] };
  for (const line of readFileSync(logFile).subarray(from).toString('utf8').split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, ts, pid, , msg] = m;
    // The log's own time zone applies to both lines of a call: read as UTC, the difference is right.
    const at = Date.parse(`${ts!.replace(' ', 'T')}Z`);
    if (msg!.startsWith('executing restore command')) open.set(pid!, at);
    else if (open.has(pid!) && /^restored log file ".*" from archive/.test(msg!)) {
      calls.served.push(at - open.get(pid!)!);
      open.delete(pid!);
    } else if (open.has(pid!) && /^could not restore file ".*" from archive/.test(msg!)) {
      calls.missed.push(at - open.get(pid!)!);
      open.delete(pid!);
    }
  }
  return calls;
}

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
