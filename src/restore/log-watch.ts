// Watching the restored copy's server log for the lines that end a wait:
// replay-wal polls the copy once a second for progress, but the moment
// replay pauses at the target (or the server becomes ready, or gives up) is
// in the log first, so a cheap look at the log's size every few
// milliseconds ends the wait within that, not up to a whole poll later.
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * What the log says, in PostgreSQL 15's English messages (lc_messages C or
 * en; other languages are not matched and the caller's poll still notices,
 * only later):
 * - pause: "pausing at the end of recovery" (a target reached with
 *   recovery_target_action = 'pause') or "recovery has paused"
 *   (pg_wal_replay_pause(), replay-wal's way to stop at the archive's end);
 *   both are logged just before pg_get_wal_replay_pause_state() says 'paused'.
 * - ready: "database system is ready to accept read-only connections", the
 *   moment a hot standby takes connections (the first poll usually finds it
 *   still starting).
 * - stopped: the postmaster's last words when recovery failed.
 */
const WAKE: ReadonlyArray<readonly [LogEvent, RegExp]> = [
  ['pause', /pausing at the end of recovery|recovery has paused/],
  ['ready', /database system is ready to accept read-only connections/],
  ['stopped', /aborting startup due to startup process failure|database system is shut down/],
];

export type LogEvent = 'pause' | 'ready' | 'stopped';

/** A partial last line is kept for the next read, up to this much. */
const CARRY_MAX = 4096;
/** Read at most this much per look; a log that grew more is read on the next look. */
const READ_MAX = 1 << 20;

export class LogWatch {
  private offset: number;
  private carry = '';

  /** Watches `file` from byte `from` on (lines before it are not this wait's). */
  constructor(
    private readonly file: string,
    from: number,
  ) {
    this.offset = from;
  }

  /** The wake events in what was appended since the last look (in order, each once), or none. */
  async look(): Promise<LogEvent[]> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch {
      return [];
    }
    // A log truncated or replaced under us starts again from its first byte.
    if (size < this.offset) {
      this.offset = 0;
      this.carry = '';
    }
    if (size === this.offset) return [];
    const length = Math.min(size - this.offset, READ_MAX);
    const buf = Buffer.alloc(length);
    let n: number;
    try {
      const handle = await open(this.file, 'r');
      try {
        ({ bytesRead: n } = await handle.read(buf, 0, length, this.offset));
      } finally {
        await handle.close();
      }
    } catch {
      // A log this worker may not read (another OS user's, mode 0600) says
      // nothing: the caller's poll still finds the pause, only later.
      return [];
    }
    this.offset += n;
    const text = this.carry + buf.subarray(0, n).toString('utf8');
    const lastNewline = text.lastIndexOf('\n');
    const whole = lastNewline >= 0 ? text.slice(0, lastNewline) : '';
    this.carry = (lastNewline >= 0 ? text.slice(lastNewline + 1) : text).slice(-CARRY_MAX);
    const events: LogEvent[] = [];
    if (whole === '') return events;
    for (const [event, re] of WAKE) if (re.test(whole)) events.push(event);
    return events;
  }

  /**
   * Sleeps up to `ms`, looking at the log every `stepMs`; returns the events
   * that ended it early, or [] after the full sleep. An abort rejects as
   * node's sleep does.
   */
  async sleep(ms: number, signal?: AbortSignal, stepMs = 50): Promise<LogEvent[]> {
    const until = Date.now() + ms;
    for (;;) {
      const events = await this.look();
      if (events.length > 0) return events;
      const left = until - Date.now();
      if (left <= 0) return [];
      await sleep(Math.min(stepMs, left), undefined, { signal });
    }
  }
}
