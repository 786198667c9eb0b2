// `lifeboat chatops`: serve the chat-ops endpoint (src/chatops/server.ts)
// until SIGINT or SIGTERM. The signing secret is read from the environment
// only (a flag would show in `ps` and shell history); without it the server
// does not start, since every request would have to be refused.
import * as path from 'node:path';
import { LifeboatError } from '../../errors';
import { intOption, temporalTarget, type TemporalOptions } from '../context';

type Options = TemporalOptions & {
  port?: string;
  host?: string;
  users?: string;
  secretEnv?: string;
  rate?: string;
  command?: string;
  redisUrlEnv?: string;
};

export const DEFAULT_SECRET_ENV = 'LIFEBOAT_CHATOPS_SIGNING_SECRET';

export async function run(opts: Options): Promise<number> {
  const port = intOption(opts.port ?? '8787', '--port', 0);
  const ratePerMinute = intOption(opts.rate ?? '20', '--rate');
  const secretEnv = opts.secretEnv ?? DEFAULT_SECRET_ENV;
  const secret = process.env[secretEnv];
  if (!secret) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `no signing secret: ${secretEnv} is not set, and every request would have to be refused`,
      {
        hints: [
          `export ${secretEnv}=<the Slack app's Signing Secret (Basic Information > App Credentials)>, or a random one shared with your bot`,
          '--secret-env <NAME> reads it from another variable; it is never taken from a flag',
        ],
      },
    );
  }
  const usersFile = opts.users ?? process.env.LIFEBOAT_CHATOPS_USERS;
  if (!usersFile) {
    throw new LifeboatError(
      'INPUT_INVALID',
      'no chat users table: pass --users <file> (or set LIFEBOAT_CHATOPS_USERS)',
      {
        hints: ['one line per chat user, e.g. "slack:U024BE7LH: alice"; an unmapped chat user is refused'],
      },
    );
  }
  const { loadUsers } = await import('../../chatops/users');
  const users = loadUsers(path.resolve(usersFile));
  const temporal = await temporalTarget(opts);
  const state = await sharedState(opts.redisUrlEnv, ratePerMinute);
  const { startChatopsServer, ROUTES } = await import('../../chatops/server');
  const server = await startChatopsServer({
    host: opts.host ?? '127.0.0.1',
    port,
    secret,
    users,
    temporal,
    ratePerMinute,
    ...(state ? { state } : {}),
    ...(opts.command ? { command: opts.command } : {}),
    ...(opts.uiUrl ? { uiUrl: opts.uiUrl } : {}),
  });
  process.stderr.write(
    `lifeboat chatops listening on ${server.url} (POST ${ROUTES.slack}, ${ROUTES.interactions}, ${ROUTES.decide}, ${ROUTES.status}; GET ${ROUTES.health}); ` +
      `Temporal ${temporal.address} namespace ${temporal.namespace}, ${temporal.origin}; ${users.size} chat user(s) mapped; ` +
      `requests signed with ${secretEnv}; ${ratePerMinute} requests a minute per chat user; replay guard and rate limit ${state ? state.where : 'in this process (one replica only)'}. Ctrl-C stops it.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

/** With --redis-url-env, the Redis every replica shares; it must answer before the server starts. */
async function sharedState(env: string | undefined, ratePerMinute: number) {
  if (!env) return undefined;
  const url = process.env[env];
  if (!url) {
    throw new LifeboatError('SECRET_MISSING', `--redis-url-env ${env}: the variable is not set`, {
      hints: [
        `export ${env}=redis://[:<password>@]<host>:6379 (the Redis every chat-ops replica shares); leave --redis-url-env out to run one replica`,
      ],
    });
  }
  const { redisState } = await import('../../chatops/shared-state');
  return redisState(url, env, ratePerMinute);
}
