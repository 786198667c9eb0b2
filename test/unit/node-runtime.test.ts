// Which Node Lifeboat runs on: one version named in scripts/setup.sh (what a
// machine with an older node gets, in the clone's .lifeboat/node), package.json
// (engines, @types/node) and the Dockerfile; and bin/lifeboat finding that
// node whatever PATH its caller has, as PostgreSQL's archive_command and
// restore_command run it (as the postgres OS user, with the postmaster's PATH).
import { execFile } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

function setupValue(name: string): string {
  const value = read('scripts/setup.sh').match(new RegExp(`^${name}="([^"]+)"$`, 'm'))?.[1];
  if (value === undefined) throw new Error(`scripts/setup.sh sets no ${name}="..."`);
  return value;
}

describe('the Node version', () => {
  const version = setupValue('NODE_VERSION');
  const major = Number(version.split('.')[0]);
  const pkg = JSON.parse(read('package.json')) as {
    engines: { node: string };
    devDependencies: Record<string, string>;
  };

  it('is one LTS release named alike in setup.sh, engines, @types/node and the Dockerfile', () => {
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(major % 2, 'an even major: an LTS line').toBe(0);
    expect(major).toBeGreaterThanOrEqual(22); // the AWS SDK v3's floor from January 2027
    expect(setupValue('NODE_INTEGRITY')).toMatch(/^sha512-[A-Za-z0-9+/]{86}==$/);
    expect(pkg.engines.node).toBe(`>=${major}`);
    expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${major}\\.`));
    const stages = [...read('Dockerfile').matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(stages[0]).toBe(`node:${version}-bookworm-slim`);
  });

  it('is the one these tests run on (npm test puts it first on PATH; in a shell: . scripts/node-path.sh)', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(major);
  });
});

describe('bin/lifeboat', () => {
  let dir: string;
  let clone: string;
  /** A stand-in node that prints who it is and its arguments. */
  const fakeNode = (file: string, name: string) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `#!/bin/sh\necho "${name} $*"\n`);
    chmodSync(file, 0o755);
  };
  const run = async (bin: string, env: Record<string, string>) =>
    (
      await exec(bin, ['--version'], { env: { PATH: `${path.join(dir, 'path-bin')}:/usr/bin:/bin`, ...env } })
    ).stdout.trim();

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-node-runtime-'));
    clone = path.join(dir, 'clone');
    mkdirSync(path.join(clone, 'bin'), { recursive: true });
    copyFileSync(path.join(ROOT, 'bin', 'lifeboat'), path.join(clone, 'bin', 'lifeboat'));
    chmodSync(path.join(clone, 'bin', 'lifeboat'), 0o755);
    fakeNode(path.join(dir, 'path-bin', 'node'), 'path-node');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the node setup.sh installed into .lifeboat/node, not the older one on PATH, also when started through a symlink', async () => {
    fakeNode(path.join(clone, '.lifeboat', 'node', 'bin', 'node'), 'clone-node');
    const main = `${clone}/bin/../dist/src/cli/main.js`; // as bin/lifeboat writes it
    expect(await run(path.join(clone, 'bin', 'lifeboat'), {})).toBe(`clone-node ${main} --version`);
    // As the Dockerfile links it: /usr/local/bin/lifeboat -> the project's bin/lifeboat.
    symlinkSync(path.join(clone, 'bin', 'lifeboat'), path.join(dir, 'lifeboat'));
    expect(await run(path.join(dir, 'lifeboat'), {})).toBe(`clone-node ${main} --version`);
  });

  it('runs LIFEBOAT_NODE when it is set, before any other', async () => {
    fakeNode(path.join(clone, '.lifeboat', 'node', 'bin', 'node'), 'clone-node');
    fakeNode(path.join(dir, 'chosen', 'node'), 'chosen-node');
    expect(await run(path.join(clone, 'bin', 'lifeboat'), { LIFEBOAT_NODE: path.join(dir, 'chosen', 'node') })).toMatch(
      /^chosen-node /,
    );
  });

  it('runs node from PATH where setup.sh installed none (the machine has a new enough one)', async () => {
    expect(await run(path.join(clone, 'bin', 'lifeboat'), {})).toMatch(
      /^path-node .*\/dist\/src\/cli\/main\.js --version$/,
    );
  });
});
