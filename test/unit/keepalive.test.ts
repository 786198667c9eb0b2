// The keepalive every activity runs under (activities/failure.ts): it beats
// while the body waits, so a dead worker is noticed within the heartbeat
// timeout, and it re-sends the last progress rather than blanking it
// (Temporal keeps only the last heartbeat's details, and `lifeboat status`
// shows them). Each body waits for the beats it needs: no sleeps.
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { heartbeat, lifeboatActivity } from '../../activities/failure';

/** An activity environment scheduled with `info` that records every heartbeat's details. */
function activityEnv(info: { heartbeatTimeoutMs?: number; heartbeatDetails?: unknown }) {
  const beats: unknown[] = [];
  const waiters: Array<() => void> = [];
  const env = new MockActivityEnvironment(info);
  env.on('heartbeat', (d: unknown) => {
    beats.push(d);
    for (const w of waiters.splice(0)) w();
  });
  /** Resolves once `n` heartbeats have been sent in all. */
  const beatsReach = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (beats.length >= n ? resolve() : void waiters.push(check));
      check();
    });
  const run = (body: () => Promise<void>) => env.run(() => lifeboatActivity(body));
  return { beats, beatsReach, run };
}

describe('the activity keepalive', () => {
  it('beats while the body waits on something that reports no progress', async () => {
    const a = activityEnv({ heartbeatTimeoutMs: 400 });
    // The body is blocked until the keepalive has beaten three times on its own.
    await a.run(() => a.beatsReach(3));
    expect(a.beats.slice(0, 3)).toEqual([undefined, undefined, undefined]);
  });

  it('re-sends the last progress an activity reported instead of blanking it', async () => {
    const progress = { phase: 'download', bytes: 42 };
    const a = activityEnv({ heartbeatTimeoutMs: 400 });
    let from = 0;
    await a.run(async () => {
      heartbeat(progress);
      from = a.beats.length - 1;
      await a.beatsReach(from + 3);
    });
    expect(a.beats[from]).toBe(progress);
    expect(a.beats.slice(from, from + 3)).toEqual([progress, progress, progress]);
  });

  it('starts a retried attempt from the details its predecessor left', async () => {
    const previous = { phase: 'replay', lsn: '0/3000060' };
    const a = activityEnv({ heartbeatTimeoutMs: 400, heartbeatDetails: previous });
    await a.run(() => a.beatsReach(2));
    expect(a.beats.slice(0, 2)).toEqual([previous, previous]);
  });

  it('does not beat for an activity scheduled without a heartbeat timeout', async () => {
    const a = activityEnv({});
    await a.run(async () => undefined);
    expect(a.beats).toEqual([]);
  });
});
