// Whether a process named in a claim or a temporary directory's name is
// still there: what proves a leftover of a killed worker is nobody's now.
import { readFile } from 'node:fs/promises';

/**
 * The start time of a process in clock ticks since boot (field 22 of
 * /proc/<pid>/stat), or undefined where /proc does not tell. With the pid it
 * names one process for the life of the host: a pid reused later by another
 * process has another start time.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/**
 * False only when the process is provably gone: kill(pid, 0) answers ESRCH,
 * or the pid now belongs to a process started at another time. EPERM means
 * it exists (another user's): alive.
 */
export async function processAlive(pid: number, startTime?: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (startTime === undefined) return true;
  const now = await processStartTime(pid);
  return now === undefined || now === startTime;
}
