// Where chat-ops keeps what must hold across requests: the signatures
// already taken (replay guard) and each chat user's request count (rate
// limit). Two kinds behind one small interface:
//   memory  one process (auth.ts ReplayGuard, rate-limit.ts RateLimiter):
//           right for a single replica, wrong for two, since a request
//           replayed to the other replica would be taken again;
//   redis   shared by every replica (`--redis-url-env`): the replay guard is
//           SET NX with a TTL that outlives the timestamp window, so of two
//           replicas receiving the same signed request exactly one sees
//           "OK"; the rate limit is one INCR per request on a per-user,
//           per-minute key, so a user's requests count once whichever
//           replica they reach.
// When Redis does not answer, nothing is taken (fail closed): a replay
// guard that cannot check would let a captured approval through twice.
// The caller tells the user so (server.ts, 503 / an ephemeral message).
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { LifeboatError, errorMessage } from '../errors';
import { hostOf, redact } from '../endpoints/secret-url';
import { MAX_SKEW_SECONDS, ReplayGuard } from './auth';
import { RateLimiter } from './rate-limit';

export interface SharedState {
  /** "in this process" or "Redis at $VAR (host:port)": for the start line and messages. */
  readonly where: string;
  /** Records the signature; false when it was already taken. Throws StateUnavailable when the store does not answer. */
  firstUse(signature: string, timestamp: string, nowSeconds: number): Promise<boolean>;
  /** Counts one request of `chatUser`: 0 when allowed, else whole seconds to wait. Throws StateUnavailable likewise. */
  take(chatUser: string, nowSeconds: number): Promise<number>;
  close(): Promise<void>;
}

/** The shared store did not answer: the request is refused, nothing was done. */
export class StateUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateUnavailable';
  }
}

export function memoryState(perMinute: number): SharedState {
  const replay = new ReplayGuard();
  const limiter = new RateLimiter(perMinute);
  return {
    where: 'in this process (one replica only)',
    firstUse: (signature, timestamp, now) => Promise.resolve(replay.firstUse(signature, timestamp, now)),
    take: (chatUser) => Promise.resolve(limiter.take(chatUser)),
    close: () => Promise.resolve(),
  };
}

/** Keys under this prefix; several chat-ops deployments may share one Redis with their own. */
export const KEY_PREFIX = 'lifeboat:chatops:';
/** How long a command to Redis may take before the request is refused. */
const COMMAND_TIMEOUT_MS = 2000;

// INCR and the key's expiry in one step: a replica dying between two
// separate commands would leave a counter that never expires.
const COUNT_SCRIPT =
  "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n";

/**
 * Connects to the Redis in `url` (read from `env`, which names it in every
 * message: the URL may hold a password) and checks it answers PING; throws
 * when it does not, so a replica never starts without its guard.
 */
export async function redisState(url: string, env: string, perMinute: number): Promise<SharedState> {
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('scheme');
  } catch {
    throw new LifeboatError('SECRET_MISSING', `environment variable ${env} does not hold a redis:// or rediss:// URL`, {
      hints: ['e.g. redis://:<password>@redis.internal:6379/0; the value is never printed'],
    });
  }
  const where = `Redis at $${env} (${hostOf(parsed, 6379)})`;
  let lastError: unknown;
  let started = false;
  const client = createClient({
    url,
    // Commands fail at once while the connection is down (no offline queue
    // that would answer minutes later) and after 2 s on a hung server; the
    // client reconnects in the background.
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    // No retries before the first connection: a wrong address or password is said at start, at once.
    socket: {
      connectTimeout: COMMAND_TIMEOUT_MS,
      reconnectStrategy: (retries: number, cause: Error) => (started ? Math.min(100 * 2 ** retries, 2000) : cause),
    },
  });
  // Without a listener an 'error' event would end the process.
  client.on('error', (err: unknown) => (lastError = err));
  const unavailable = (err: unknown) =>
    new StateUnavailable(`${where} did not answer: ${redact(errorMessage(lastError ?? err), parsed)}`);
  try {
    await withTimeout(client.connect(), COMMAND_TIMEOUT_MS * 3);
    await client.ping();
    started = true;
  } catch (err) {
    client.destroy();
    throw new LifeboatError(
      'TARGET_UNREACHABLE',
      `${where} did not answer PING: ${redact(errorMessage(lastError ?? err), parsed)}`,
      {
        hints: [
          `chat-ops keeps its replay guard and rate limit there; check ${env} and that Redis is up (redis-cli -h ${parsed.hostname} -p ${parsed.port || 6379} ping)`,
        ],
      },
    );
  }
  return {
    where,
    async firstUse(signature, timestamp, now) {
      // Kept until the timestamp itself is refused as stale, plus a margin for clocks.
      const ttl = Math.max(1, Number(timestamp) + MAX_SKEW_SECONDS - now) + 60;
      const key = `${KEY_PREFIX}seen:${createHash('sha256').update(signature).digest('hex')}`;
      try {
        return (
          (await client.set(key, String(now), { condition: 'NX', expiration: { type: 'EX', value: ttl } })) === 'OK'
        );
      } catch (err) {
        throw unavailable(err);
      }
    },
    async take(chatUser, now) {
      const minute = Math.floor(now / 60);
      const key = `${KEY_PREFIX}rate:${chatUser}:${minute}`;
      let count: number;
      try {
        count = Number(await client.eval(COUNT_SCRIPT, { keys: [key], arguments: ['120'] }));
      } catch (err) {
        throw unavailable(err);
      }
      return count <= perMinute ? 0 : Math.max(1, (minute + 1) * 60 - now);
    },
    async close() {
      // close() waits for pending replies, which a server that went away never sends.
      if (client.isReady) await client.close().catch(() => client.destroy());
      else if (client.isOpen) client.destroy();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}
