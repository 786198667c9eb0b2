// The replay guard and rate limit chat-ops replicas share (src/chatops/shared-state.ts),
// on a real redis-server: a signature taken by one replica is a replay on
// the other; a user's requests count once whichever replica they reach, and
// the next minute starts afresh; a Redis that is not there refuses to start,
// with the variable's name and never its password; one that goes away
// refuses each request (fail closed) rather than letting it through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisState, StateUnavailable, type SharedState } from '../../src/chatops/shared-state';
import { LifeboatError } from '../../src/errors';
import { freePort } from '../harness/ports';
import { startRedis, type TestRedis } from '../harness/redis';

const PASSWORD = 'redis-pass-5e1f';
let redis: TestRedis;
const states: SharedState[] = [];
beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
});
afterAll(async () => {
  for (const s of states) await s.close();
  await redis.stop();
});

async function replica(perMinute = 3): Promise<SharedState> {
  const s = await redisState(redis.url, 'CHATOPS_REDIS_URL', perMinute);
  states.push(s);
  return s;
}

describe('chat-ops state in Redis', () => {
  it('takes a signed request once across two replicas, and names where it keeps them', async () => {
    const [a, b] = [await replica(), await replica()];
    expect(a.where).toBe(`Redis at $CHATOPS_REDIS_URL (127.0.0.1:${redis.port})`);
    const now = 1_764_800_000;
    expect(await a.firstUse('v0=abc', String(now), now)).toBe(true);
    expect(await b.firstUse('v0=abc', String(now), now)).toBe(false);
    expect(await a.firstUse('v0=abc', String(now), now + 10)).toBe(false);
    expect(await b.firstUse('v0=def', String(now), now)).toBe(true);
  });

  it("counts a user's requests on both replicas together; over the limit, the wait is until the minute turns", async () => {
    const [a, b] = [await replica(3), await replica(3)];
    const now = 1_764_800_020; // 40 s into its minute (1_764_799_980 is a whole minute)
    expect([await a.take('slack:U1', now), await b.take('slack:U1', now), await a.take('slack:U1', now)]).toEqual([
      0, 0, 0,
    ]);
    expect(await b.take('slack:U1', now)).toBe(20);
    expect(await a.take('slack:U2', now)).toBe(0);
    expect(await a.take('slack:U1', now + 20)).toBe(0);
  });

  it('refuses to start when Redis does not answer or the variable holds no redis:// URL, never printing the URL', async () => {
    const port = await freePort();
    const err = await redisState(`redis://:${PASSWORD}@127.0.0.1:${port}`, 'CHATOPS_REDIS_URL', 3).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).code).toBe('TARGET_UNREACHABLE');
    expect((err as Error).message).toMatch(
      new RegExp(`^Redis at \\$CHATOPS_REDIS_URL \\(127\\.0\\.0\\.1:${port}\\) did not answer PING: `),
    );
    expect(String((err as LifeboatError).hints)).toContain('check CHATOPS_REDIS_URL and that Redis is up');
    expect((err as Error).message).not.toContain(PASSWORD);

    const wrongPassword = (await redisState(
      `redis://:not-${PASSWORD}@127.0.0.1:${redis.port}`,
      'CHATOPS_REDIS_URL',
      3,
    ).catch((e: unknown) => e)) as Error;
    expect(wrongPassword.message).toMatch(/did not answer PING: .*WRONGPASS/);
    expect(wrongPassword.message).not.toContain(PASSWORD);

    const notUrl = (await redisState(`http://${PASSWORD}`, 'CHATOPS_REDIS_URL', 3).catch(
      (e: unknown) => e,
    )) as LifeboatError;
    expect(notUrl.what).toBe('environment variable CHATOPS_REDIS_URL does not hold a redis:// or rediss:// URL');
  });

  it('refuses every request once Redis has gone (fail closed), naming where', async () => {
    const a = await replica();
    await redis.stop();
    const now = 1_764_800_100;
    await expect(a.firstUse('v0=after', String(now), now)).rejects.toThrow(StateUnavailable);
    await expect(a.take('slack:U1', now)).rejects.toThrow(
      /^Redis at \$CHATOPS_REDIS_URL \(127\.0\.0\.1:\d+\) did not answer: /,
    );
  });
});
