// CPU-seconds of one restore, on a machine other jobs share: only the
// processes that worked for it, read from /proc (cgroup accounting reads 0 in
// this VM). A row's CPU is the sum, over the row, of:
//   - this process (the bench's Temporal worker runs Lifeboat's activities
//     in-process) and every child it waited for (cp, pgbackrest restore,
//     pg_ctl, the worker's zstd, tar and pg_verifybackup): the change in
//     utime + stime + cutime + cstime of /proc/self/stat, less the time this
//     sampler spent reading /proc;
//   - the services the row used, given by pid (Temporal, MinIO): the change
//     in the same four fields;
//   - every process whose command line names the bench's work directory (the
//     restored copy's postmaster, archive-get, Lifeboat's prefetcher,
//     pgBackRest's async archive-get), and the descendants of those, except
//     the primary's: read every 200 ms; a process alive at the end counts
//     with its four fields, one that exited counts its last reading only when
//     nobody counted here waited for it (a daemon), since the one that waited
//     holds its time in cutime.
// What it misses: a daemon's last < 200 ms, and a daemon that lived less than
// 200 ms; it never counts the same time twice.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const TICK = 100; // USER_HZ: the unit of /proc/<pid>/stat times on Linux
const EVERY_MS = 200;

interface Stat {
  ppid: number;
  start: string;
  /** utime + stime + cutime + cstime, in ticks. */
  total: number;
}

function readStat(pid: number | 'self'): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), start: f[19]!, total: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** A process's kind, for the breakdown: PostgreSQL's role, Lifeboat's command, or the program's name. */
function labelOf(cmd: string): string {
  const pg = /^postgres: (?:\S+: )?([a-z ]+?)(?: [0-9A-F]{24}| recovering|$)/.exec(cmd.trim());
  if (pg) return `postgres: ${pg[1]}`;
  const lifeboat = /lifeboat\S*\s+(archive-[a-z]+)|main\.js\s+(archive-[a-z]+)/.exec(cmd);
  if (lifeboat) return `lifeboat ${lifeboat[1] ?? lifeboat[2]}`;
  return (cmd.split(' ')[0] ?? '').split('/').at(-1) || '?';
}

export class CpuMeter {
  private readonly tracked = new Map<
    number,
    { start: string; ppid: number; total: number; base: number; alive: boolean; label: string }
  >();
  private readonly byLabel = new Map<string, number>();
  private starting = false;
  private readonly ignored = new Set<string>();
  private readonly fixedAtStart = new Map<number, number>();
  private selfAtStart = 0;
  private overheadUs = 0;
  private timer?: NodeJS.Timeout;

  /**
   * @param marker a path only this bench's processes name (its work directory)
   * @param services pids counted by their change alone (Temporal, MinIO)
   * @param excluded pids whose trees never count (the primary's postmaster)
   */
  constructor(
    private readonly marker: string,
    private readonly services: number[],
    private readonly excluded: number[],
  ) {}

  start(): void {
    this.selfAtStart = readStat('self')!.total;
    for (const pid of this.services) this.fixedAtStart.set(pid, readStat(pid)?.total ?? 0);
    // Processes of ours already running (a daemon of the row before) count from here on.
    this.starting = true;
    this.sample();
    this.starting = false;
    this.timer = setInterval(() => this.sample(), EVERY_MS);
  }

  /** Stops sampling; the row's CPU-seconds. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    let ticks = readStat('self')!.total - this.selfAtStart;
    for (const pid of this.services) ticks += (readStat(pid)?.total ?? 0) - (this.fixedAtStart.get(pid) ?? 0);
    this.byLabel.clear();
    for (const pid of this.services)
      this.byLabel.set(
        `service ${labelOf(cmdline(pid))}`,
        (readStat(pid)?.total ?? 0) - (this.fixedAtStart.get(pid) ?? 0),
      );
    this.byLabel.set(
      'bench and worker (in-process activities, their children)',
      readStat('self')!.total - this.selfAtStart,
    );
    for (const [pid, t] of this.tracked) {
      // A process that was waited for by one counted here is in that one's cutime.
      const waitedFor = t.ppid === process.pid || this.tracked.has(t.ppid);
      if (t.alive || !waitedFor) {
        ticks += t.total - t.base;
        this.byLabel.set(t.label, (this.byLabel.get(t.label) ?? 0) + t.total - t.base);
      }
      void pid;
    }
    return ticks / TICK - this.overheadUs / 1e6;
  }

  /** After stop(): CPU-seconds by kind of process (postgres: startup, archive-prefetch, ...), largest first. */
  breakdown(): Array<[string, number]> {
    return [...this.byLabel].map(([k, v]): [string, number] => [k, v / TICK]).sort((a, b) => b[1] - a[1]);
  }

  private sample(): void {
    const before = process.cpuUsage();
    for (const t of this.tracked.values()) t.alive = false;
    const pids = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
    const stats = new Map<number, Stat>();
    for (const pid of pids) {
      const s = readStat(pid);
      if (s) stats.set(pid, s);
    }
    const isExcluded = (pid: number): boolean => {
      for (let p = pid, hops = 0; p > 1 && hops < 64; p = stats.get(p)?.ppid ?? 0, hops++)
        if (this.excluded.includes(p)) return true;
      return false;
    };
    for (const [pid, s] of stats) {
      if (pid === process.pid || this.services.includes(pid)) continue;
      const known = this.tracked.get(pid);
      if (known && known.start === s.start) {
        Object.assign(known, { ppid: s.ppid, total: s.total, alive: true });
        continue;
      }
      const key = `${pid}:${s.start}`;
      if (this.ignored.has(key)) continue;
      const ours = (this.tracked.has(s.ppid) || cmdline(pid).includes(this.marker)) && !isExcluded(pid);
      if (ours)
        this.tracked.set(pid, {
          start: s.start,
          ppid: s.ppid,
          total: s.total,
          base: this.starting ? s.total : 0,
          alive: true,
          label: labelOf(cmdline(pid)),
        });
      else this.ignored.add(key);
    }
    const used = process.cpuUsage(before);
    this.overheadUs += used.user + used.system;
  }
}

/** Pids whose command line contains `text` (a service this process started, found by its arguments). */
export function pidsWithCmdline(text: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => pid !== process.pid && cmdline(pid).includes(text));
}

/**
 * Where a paused copy's startup process (replay itself) spent its life, read
 * from /proc while it waits at the target: seconds on a CPU, seconds ready
 * but waiting for one (/proc/<pid>/schedstat), and seconds blocked on disk
 * I/O (delayacct_blkio_ticks, field 42 of /proc/<pid>/stat: counted only
 * when kernel.task_delayacct is 1, which the bench turns on when it can).
 * Undefined when the copy or its startup process is not found.
 */
export function startupProcessTimes(dataDir: string): { cpu: number; runqueue: number; io: number } | undefined {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    if (readStat(pid)?.ppid !== postmaster || !cmdline(pid).startsWith('postgres: startup')) continue;
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const io = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[39]);
      return { cpu: (run ?? 0) / 1e9, runqueue: (wait ?? 0) / 1e9, io: io / TICK };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Turns on the kernel's per-task I/O delay accounting (root only); whether it is on. */
export function enableDelayAccounting(): boolean {
  try {
    writeFileSync('/proc/sys/kernel/task_delayacct', '1');
  } catch {
    // not root, or a kernel without it: the I/O column reads 0
  }
  try {
    return readFileSync('/proc/sys/kernel/task_delayacct', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
