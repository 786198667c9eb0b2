// What `lifeboat dev` (and so `npm start`) says when PostgreSQL, running as
// the postgres OS user, could not reach what archive_command needs: the
// directory that stops it (a 0700 parent) and the command to run next in the
// words of the command the operator used (`npm start -- --state-dir ...`).
// Real permission checks: runuser as postgres against directories made here.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockingDir, devCommand, requireReachable } from '../../src/dev/reach';
import { cliPath, runningSandbox } from '../../src/dev/sandbox-state';
import { chownToOsUser } from '../../src/dev/sandbox-pg';

// A 0700 directory of root's, like /root or a private home, with a sandbox state below it.
const privateDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-private-'));
chmodSync(privateDir, 0o700);
const state = path.join(privateDir, 'project', '.lifeboat', 'dev');
mkdirSync(path.join(state, 'repo'), { recursive: true });
chownToOsUser(path.join(state, 'repo'), 'postgres');
// The test's own directory.
afterAll(() => rmSync(privateDir, { recursive: true, force: true }));

describe('lifeboat dev under a directory postgres cannot enter', () => {
  it('names the command the operator ran: npm start -- ... under npm start, the CLI otherwise', () => {
    expect(devCommand({ npm_lifecycle_event: 'start' })).toBe('npm start --');
    expect(devCommand({})).toBe(`${cliPath()} dev`);
  });

  it('finds the directory that stops postgres, with its mode', async () => {
    expect(await blockingDir('postgres', path.join(state, 'repo'))).toEqual({
      dir: privateDir,
      mode: '0700',
      owner: process.getuid!(),
    });
    expect(await blockingDir('postgres', os.tmpdir())).toBeUndefined();
  });

  it('refuses with that directory and the npm start -- --state-dir command when started by npm start', async () => {
    const err = await requireReachable('postgres', state, { npm_lifecycle_event: 'start' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(
      [
        `the postgres OS user cannot write the sandbox's repository ${state}/repo, where archive_command stores WAL: ${privateDir} (mode 0700, owner uid ${process.getuid!()}) does not let postgres in`,
        `HINT: let postgres through (search only, no listing): chmod o+x ${privateDir}`,
        'HINT: or keep the sandbox where postgres can write: npm start -- --state-dir /tmp/lifeboat-dev',
      ].join('\n'),
    );
    const direct = await requireReachable('postgres', state, {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((direct as Error).message).toContain(
      `HINT: or keep the sandbox where postgres can write: ${cliPath()} dev --state-dir /tmp/lifeboat-dev`,
    );
  });

  it('passes once postgres may enter (search only)', async () => {
    chmodSync(privateDir, 0o711);
    try {
      await expect(requireReachable('postgres', state, {})).resolves.toBeUndefined();
    } finally {
      chmodSync(privateDir, 0o700);
    }
  });

  it('tells other commands to start the sandbox with npm start -- --state-dir when it is not the default', () => {
    let message = '';
    try {
      runningSandbox(state);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(
      `start it first, in another terminal: npm start -- --state-dir ${state} (or ${cliPath()} dev --state-dir ${state})`,
    );
  });
});
