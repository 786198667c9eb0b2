// isAlive (src/wal/pid.ts): the prefetcher, spool locks and the read-ahead
// pusher decide by it whether the process in a pid file still runs. A zombie
// (exited, not yet collected by its parent) answers signal 0 but runs no
// more: on a machine whose PID 1 does not reap, an orphaned prefetcher stayed
// "alive" that way after it was stopped.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { afterEach, expect, it } from 'vitest';
import { isAlive, pidTextAlive } from '../../src/wal/pid';

const children: { kill: () => void }[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

const stateOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
};

it('a running process is alive, this one and a child', async () => {
  expect(isAlive(process.pid)).toBe(true);
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push({ kill: () => child.kill('SIGKILL') });
  await once(child, 'spawn');
  expect(isAlive(child.pid!)).toBe(true);
  expect(pidTextAlive(`${child.pid}\n`)).toBe(true);
});

it('a zombie is not alive, though signal 0 still reaches it', async () => {
  // The child exits at once; its parent (perl) never waits for it, so it stays a zombie. Not a shell:
  // a shell may collect a finished background job on its way to `exec`.
  const parent = spawn('perl', ['-e', '$| = 1; my $p = fork() // die; exit 0 if $p == 0; print "$p\\n"; sleep 30'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push({ kill: () => parent.kill('SIGKILL') });
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const zombie = Number(line.toString().trim());
  // Held, not raced: wait until the kernel shows it exited (state Z), however long the machine takes.
  while (stateOf(zombie) !== 'Z') await new Promise((r) => setTimeout(r, 10));
  expect(() => process.kill(zombie, 0)).not.toThrow();
  expect(isAlive(zombie)).toBe(false);
});

it('a pid that is not a number, zero or negative is not alive', () => {
  expect(isAlive(0)).toBe(false);
  expect(isAlive(-1)).toBe(false);
  expect(pidTextAlive('')).toBe(false);
  expect(pidTextAlive('garbage')).toBe(false);
});
