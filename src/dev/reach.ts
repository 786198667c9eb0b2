// Can the postgres OS user reach what `lifeboat dev` gives it? PostgreSQL
// runs archive_command as that user: it executes the project's bin/lifeboat
// with this process's node, which reads dist/, and writes the sandbox's
// repository under the state directory. A project cloned under a 0700 home
// directory (/root, /home/alice with a private umask) breaks all of it, and
// `--state-dir` alone does not help, since bin/lifeboat stays where it is.
// These checks say which directory stops postgres and what to do, in the
// words of the command the operator ran (`npm start -- ...` or `lifeboat dev ...`).
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { cliMain, projectRoot } from '../tools';
import { asOsUser } from './sandbox-pg';
import { cliPath } from './sandbox-state';

/** How the operator started the sandbox: npm sets npm_lifecycle_event for `npm start`, whose own flags need `--`. */
export function devCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.npm_lifecycle_event === 'start' ? 'npm start --' : `${cliPath()} dev`;
}

/** Whether user may do `test <flag> <p>` (-x: run or enter, -r: read, -w: write). */
export async function userCan(user: string, flag: '-x' | '-r' | '-w', p: string): Promise<boolean> {
  return asOsUser(user, 'test', [flag, p]).then(
    () => true,
    () => false,
  );
}

/** The first directory on p's path (from /) that user cannot enter, with its mode and owner; undefined when none. */
export async function blockingDir(
  user: string,
  p: string,
): Promise<{ dir: string; mode: string; owner: number } | undefined> {
  const parts = path.resolve(p).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    let st;
    try {
      st = statSync(dir);
    } catch {
      return undefined; // not there yet: it will be created, by us
    }
    if (!st.isDirectory()) return undefined;
    if (!(await userCan(user, '-x', dir)))
      return { dir, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), owner: st.uid };
  }
  return undefined;
}

function blockedWords(b: { dir: string; mode: string; owner: number }, user: string): string {
  return `${b.dir} (mode ${b.mode}, owner uid ${b.owner}) does not let ${user} in`;
}

/**
 * Refuses (TOOL_FAILED) a sandbox whose archive_command could not work:
 * the project's bin/lifeboat, dist/ or node not reachable by user, or the
 * state directory's repository not writable by it.
 */
export async function requireReachable(
  user: string,
  state: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const bin = path.join(projectRoot(), 'bin', 'lifeboat');
  for (const [p, flag, what] of [
    [bin, '-x', "the project's bin/lifeboat, which PostgreSQL runs as archive_command"],
    [cliMain(), '-r', "the project's dist/, which bin/lifeboat runs"],
    [process.execPath, '-x', `node (${process.execPath}), which bin/lifeboat runs`],
  ] as const) {
    if (await userCan(user, flag, p)) continue;
    const blocked = await blockingDir(user, p);
    throw new LifeboatError(
      'TOOL_FAILED',
      `the ${user} OS user cannot ${flag === '-r' ? 'read' : 'run'} ${what}: ${blocked ? blockedWords(blocked, user) : `${p} is not ${flag === '-r' ? 'readable' : 'executable'} by ${user}`}`,
      {
        hints: [
          blocked
            ? `let ${user} through (search only, no listing): chmod o+x ${blocked.dir}; or keep the project (and node) where ${user} can reach them, e.g. /opt/lifeboat`
            : `make it ${flag === '-r' ? 'readable' : 'executable'} by ${user}: chmod o+${flag === '-r' ? 'r' : 'rx'} ${p}`,
          `--state-dir does not help here: archive_command always runs ${bin}`,
          `then start the sandbox again: ${devCommand(env)}`,
        ],
      },
    );
  }
  const repo = path.join(state, 'repo');
  if (await userCan(user, '-w', repo)) return;
  const blocked = await blockingDir(user, repo);
  throw new LifeboatError(
    'TOOL_FAILED',
    `the ${user} OS user cannot write the sandbox's repository ${repo}, where archive_command stores WAL: ${blocked ? blockedWords(blocked, user) : `${repo} is not writable by ${user}`}`,
    {
      hints: [
        blocked
          ? `let ${user} through (search only, no listing): chmod o+x ${blocked.dir}`
          : `give it to ${user}: chown ${user} ${repo}`,
        `or keep the sandbox where ${user} can write: ${devCommand(env)} --state-dir /tmp/lifeboat-dev`,
      ],
    },
  );
}
