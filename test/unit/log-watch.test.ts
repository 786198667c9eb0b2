// LogWatch (src/restore/log-watch.ts): replay-wal's early wake-up on the
// server log's pause line. The waits here are an hour long: each test ends
// only because the watch saw the line it was given.
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogWatch } from '../../src/restore/log-watch';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-log-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const HOUR = 3_600_000;
let n = 0;
const logFile = (text: string) => {
  const f = path.join(dir, `postgres-${n++}.log`);
  writeFileSync(f, text);
  return f;
};

describe('LogWatch', () => {
  it('ends an hour-long sleep when PostgreSQL logs the pause at the target, and only then', async () => {
    const f = logFile('2026-12-03 15:00:00.000 UTC [10] LOG:  starting PostgreSQL 15\n');
    const watch = new LogWatch(f, 0);
    expect(await watch.look()).toEqual([]);
    appendFileSync(
      f,
      '2026-12-03 15:00:01.000 UTC [11] LOG:  restored log file "000000010000000000000003" from archive\n',
    );
    appendFileSync(
      f,
      '2026-12-03 15:00:02.000 UTC [11] LOG:  recovery stopping before commit of transaction 740, time 2026-12-03 14:59:00+00\n',
    );
    expect(await watch.look()).toEqual([]);
    const woke = watch.sleep(HOUR);
    appendFileSync(
      f,
      '2026-12-03 15:00:02.000 UTC [11] LOG:  pausing at the end of recovery\n2026-12-03 15:00:02.000 UTC [11] HINT:  Execute pg_wal_replay_resume() to promote.\n',
    );
    expect(await woke).toEqual(['pause']);
    // Consumed: the next look finds nothing new.
    expect(await watch.look()).toEqual([]);
  });

  it('wakes on "recovery has paused", on the server becoming ready, and on a failed start-up', async () => {
    const f = logFile('');
    const watch = new LogWatch(f, 0);
    const cases: [string, string][] = [
      ['LOG:  recovery has paused', 'pause'],
      ['LOG:  database system is ready to accept read-only connections', 'ready'],
      ['LOG:  aborting startup due to startup process failure', 'stopped'],
      ['LOG:  database system is shut down', 'stopped'],
    ];
    for (const [line, event] of cases) {
      const woke = watch.sleep(HOUR);
      appendFileSync(f, `2026-12-03 15:00:00.000 UTC [11] ${line}\n`);
      expect(await woke).toEqual([event]);
    }
  });

  it('ignores what was in the log before its starting byte (an earlier start of the same copy)', async () => {
    const f = logFile('LOG:  pausing at the end of recovery\nLOG:  database system is shut down\n');
    const watch = new LogWatch(f, statSync(f).size);
    expect(await watch.look()).toEqual([]);
    appendFileSync(f, 'LOG:  starting PostgreSQL 15\n');
    expect(await watch.look()).toEqual([]);
  });

  it('sees a line written in two pieces once it is whole', async () => {
    const f = logFile('');
    const watch = new LogWatch(f, 0);
    appendFileSync(f, 'LOG:  pausing at the end');
    expect(await watch.look()).toEqual([]);
    appendFileSync(f, ' of recovery\n');
    expect(await watch.look()).toEqual(['pause']);
  });

  it('starts again from the first byte of a log that was truncated, and says nothing for a missing one', async () => {
    const f = logFile('LOG:  starting PostgreSQL 15\nLOG:  entering standby mode\n');
    const watch = new LogWatch(f, statSync(f).size);
    writeFileSync(f, 'LOG:  recovery has paused\n');
    expect(await watch.look()).toEqual(['pause']);
    expect(await new LogWatch(path.join(dir, 'never-written.log'), 0).look()).toEqual([]);
  });

  it('treats a log it cannot read as silent, so replay-wal falls back to its poll instead of failing', async () => {
    // A directory: stat works, reading fails (EISDIR), as a log of another OS user would (EACCES).
    const unreadable = mkdtempSync(path.join(dir, 'not-a-file-'));
    expect(await new LogWatch(unreadable, 0).look()).toEqual([]);
    expect(await new LogWatch(unreadable, 0).sleep(60, undefined, 10)).toEqual([]);
  });

  it('sleeps the whole time when nothing is logged', async () => {
    const f = logFile('');
    expect(await new LogWatch(f, 0).sleep(120, undefined, 10)).toEqual([]);
  });

  it('an abort ends the sleep with an AbortError', async () => {
    const f = logFile('');
    const ac = new AbortController();
    const woke = new LogWatch(f, 0).sleep(HOUR, ac.signal);
    ac.abort();
    await expect(woke).rejects.toMatchObject({ name: 'AbortError' });
  });
});
