// The `lifeboat` binary as an operator meets it: --help everywhere, exit
// code 2 and a hint for bad usage, and nothing changed when input is wrong.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');

async function lifeboat(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(CLI, args, {
      env: { ...process.env, LIFEBOAT_RUNBOOKS_DIR: '/nonexistent' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const COMMANDS = [
  'dev',
  'worker',
  'runbook validate',
  'backup',
  'backups',
  'check',
  'expire',
  'archive-push',
  'archive-get',
  'recover',
  'approve',
  'retarget',
  'status',
  'pending',
  'drill',
  'schedules',
  'schedules pause',
  'evidence',
  'report',
  'checkpoint',
  'chatops',
  'standby build',
  'standby status',
];

describe('lifeboat --help', () => {
  it('lists every command of this release with a description', async () => {
    const { code, stdout } = await lifeboat('--help');
    expect(code).toBe(0);
    for (const c of COMMANDS) expect(stdout).toContain(c.split(' ')[0]);
    expect(stdout).not.toContain('archive-prefetch');
  });

  it.each(COMMANDS)('explains `%s` and its options', async (command) => {
    const { code, stdout } = await lifeboat(...command.split(' '), '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Usage: lifeboat ${command}`, 'm'));
    expect(stdout).toContain('Options:');
  });
});

describe('bad usage', () => {
  it('exits 2 for an unknown command and says where to look', async () => {
    const { code, stderr } = await lifeboat('restore-everything');
    expect(code).toBe(2);
    expect(stderr).toContain("unknown command 'restore-everything'");
    expect(stderr).toContain('--help');
  });

  it('exits 2 when no repository is named, with an example', async () => {
    const { code, stderr } = await lifeboat('backups');
    expect(code).toBe(2);
    expect(stderr).toContain('lifeboat: no repository: pass --runbook <name> or --repo <url> --cluster <name>');
    expect(stderr).toContain('HINT: e.g. lifeboat backups --runbook orders');
  });

  it('exits 2 for a runbook that does not exist, naming where it looked', async () => {
    const { code, stderr } = await lifeboat('backups', '--runbook', 'orders');
    expect(code).toBe(2);
    expect(stderr).toContain('lifeboat: runbook "orders" not found at /nonexistent/orders.yaml');
    expect(stderr).toContain('HINT: pass --runbooks-dir or set LIFEBOAT_RUNBOOKS_DIR');
  });

  it('exits 2 for drill --from-standby with a runbook that declares no standby, before starting anything', async () => {
    const runbook = path.resolve(__dirname, '../../runbooks/orders.example.yaml');
    const { code, stdout, stderr } = await lifeboat(
      'drill',
      '--runbook',
      runbook,
      '--from-standby',
      '--to-latest',
      '--address',
      '127.0.0.1:1',
    );
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toBe(
      'lifeboat: --from-standby: runbook orders declares no warm standby\nHINT: add a standby: section (host, dataDir, port, delay), build it with lifeboat standby build, or run the drill without --from-standby\n',
    );
  });

  it('exits 2 for a repository URL of an unknown kind', async () => {
    const { code, stderr } = await lifeboat('backups', '--repo', 'ftp://example/backups', '--cluster', 'orders');
    expect(code).toBe(2);
    expect(stderr).toContain('unsupported repository URL "ftp://example/backups"');
    expect(stderr).toContain('HINT: use file:///absolute/path or s3://bucket/prefix');
  });
});

describe('lifeboat pending --query', () => {
  it('prints the visibility query of "waiting for a person" without reaching Temporal, narrowed by --runbook', async () => {
    // No Temporal answers at this address: the query is printed before any connection.
    const { code, stdout } = await lifeboat('pending', '--query', '--runbook', 'orders', '--address', '127.0.0.1:1');
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^WorkflowType IN \('recoverToPointInTime', 'repairFromPointInTime'\) AND ExecutionStatus = 'Running' AND LifeboatAwaiting IN \('[a-z-]+'(, '[a-z-]+')*\) AND LifeboatRunbook = 'orders'\n$/,
    );
  });
});
