// Running `pgbackrest` for the engine: as the PostgreSQL OS user (as
// pgBackRest runs on a server: its lock, log and spool paths belong to that
// user), with the stanza, configuration file and repository of the runbook's
// engine block, and an environment of PATH, locale and every PGBACKREST_*
// variable of this process (pgBackRest reads its secrets, e.g.
// PGBACKREST_REPO1_CIPHER_PASS, from there or from its configuration file:
// never from the runbook, never on a command line).
import { spawnAsOsUser, baseEnv } from '../../restore/os-user';
import { LifeboatError, type ErrorCode } from '../../errors';
import { pgTime } from '../../restore/recovery-conf';
import type { PgBackRestSetting } from '../../runbook/engine';
import type { EngineRestoreRequest } from '../types';
import { failureError, parseFailure } from './errors';

export interface PgBackRestTarget extends Omit<PgBackRestSetting, 'kind' | 'delta'> {
  osUser: string;
  /** The pgbackrest binary; PATH's by default. */
  bin?: string;
}

export interface RunOptions {
  /** Called for every line pgBackRest prints on stdout (its console log). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Error code for a failure pgBackRest's code does not name (errors.ts). */
  fallback?: ErrorCode;
  /** Pass --repo (commands that take it: info, backup, restore, expire, verify, repo-ls, repo-get). */
  withRepo?: boolean;
  /** Console log level: 'off' for commands whose stdout is JSON, 'detail' for per-file progress. */
  console?: 'off' | 'warn' | 'info' | 'detail';
  /** The environment instead of pgBackRestEnv() (the engine's check of what a restored copy's restore_command will have). */
  env?: Record<string, string>;
}

/** The environment pgBackRest gets: nothing of the worker's but PATH, locale and PGBACKREST_*. */
export function pgBackRestEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env = baseEnv();
  for (const [k, v] of Object.entries(source)) if (k.startsWith('PGBACKREST_') && v !== undefined) env[k] = v;
  return env;
}

/** The options every call carries: --config, --stanza (and --repo where asked). */
export function commonArgs(t: PgBackRestTarget, withRepo: boolean): string[] {
  return [
    ...(t.configPath ? [`--config=${t.configPath}`] : []),
    `--stanza=${t.stanza}`,
    ...(withRepo && t.repo !== undefined ? [`--repo=${t.repo}`] : []),
  ];
}

/** How hints name a command: "pgbackrest --config=... --stanza=main". */
export function stanzaCommand(t: PgBackRestTarget): string {
  return `pgbackrest${t.configPath ? ` --config=${t.configPath}` : ''} --stanza=${t.stanza}`;
}

/** Runs `pgbackrest <command> <args>`; resolves with its stdout, rejects with a LifeboatError keeping pgBackRest's error. */
export function runPgBackRest(
  t: PgBackRestTarget,
  command: string,
  args: string[],
  opts: RunOptions = {},
): Promise<string> {
  // The command before its arguments: repo-ls and repo-get take a path after it.
  const argv = [
    ...commonArgs(t, opts.withRepo ?? false),
    `--log-level-console=${opts.console ?? 'off'}`,
    '--log-level-stderr=error',
    command,
    ...args,
  ];
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const env = opts.env ?? pgBackRestEnv();
    const child = spawnAsOsUser(t.osUser, t.bin ?? 'pgbackrest', argv, env, ['ignore', 'pipe', 'pipe']);
    let out = '';
    let partial = '';
    let err = '';
    const keepAll = (opts.console ?? 'off') === 'off';
    const onAbort = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (d: Buffer) => {
      const s = d.toString();
      // JSON output is kept whole; a progress log only as a tail (thousands of file lines).
      out = keepAll ? out + s : (out + s).slice(-65536);
      if (opts.onLine) {
        const lines = (partial + s).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) opts.onLine(l);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-16384)));
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(
        new LifeboatError('TOOL_FAILED', `could not run pgbackrest ${command} as ${t.osUser}: ${e.message}`, {
          hints: [
            'is pgBackRest installed on this host (pgbackrest version)? scripts/setup.sh installs it',
            `does the OS user ${t.osUser} exist here (cluster.osUser)?`,
          ],
          cause: e,
        }),
      );
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (partial && opts.onLine) opts.onLine(partial);
      if (code === 0) return resolve(out);
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const f = parseFailure(`${err}\n${out}`, code ?? 1);
      if (signal && code === null) f.text = `${f.text} (killed by ${signal})`;
      reject(failureError(command, f, opts.fallback));
    });
  });
}

/** Percent done from a per-file progress line: "restore file /data/base/1/1249 (440KB, 2.48%) checksum ...". */
export function progressOfLine(line: string): number | undefined {
  const m = /\((?:[^,()]+), (\d+(?:\.\d+)?)%\)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** restore's target options for a Lifeboat target, pausing there; the end of the archive is a standby that never promotes. */
export function targetArgs(req: Pick<EngineRestoreRequest, 'target' | 'targetTimeline' | 'immediate'>): string[] {
  const t = req.target;
  const timeline = `--target-timeline=${req.targetTimeline ?? 'latest'}`;
  if (req.immediate)
    return ['--type=immediate', '--target-action=pause', `--target-timeline=${req.targetTimeline ?? 'current'}`];
  if ('latest' in t) return ['--type=standby', timeline];
  const [type, value] =
    'time' in t
      ? ['time', pgTime(t.time)]
      : 'name' in t
        ? ['name', t.name]
        : 'lsn' in t
          ? ['lsn', t.lsn]
          : ['xid', t.xid];
  return [`--type=${type}`, `--target=${value}`, '--target-action=pause', timeline];
}
