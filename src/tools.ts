// Where the binaries that scripts/setup.sh builds live: the Temporal CLI (for
// its dev server) and MinIO, cached outside the clone so every clone and CI
// run on a machine reuses them.
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from './errors';

export function toolsDir(): string {
  return (
    process.env.LIFEBOAT_TOOLS_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lifeboat', 'tools')
  );
}

/** Path of a tool: $LIFEBOAT_<NAME>_BIN, then the tools directory. Undefined when missing. */
export function findTool(name: 'temporal' | 'minio' | 'mc'): string | undefined {
  const override = process.env[`LIFEBOAT_${name.toUpperCase()}_BIN`];
  if (override) return override;
  const p = path.join(toolsDir(), name);
  return existsSync(p) ? p : undefined;
}

export function requireTool(name: 'temporal' | 'minio' | 'mc'): string {
  const p = findTool(name);
  if (!p) {
    throw new LifeboatError('TOOL_FAILED', `${name} binary not found in ${toolsDir()}`, {
      hints: ['run: bash scripts/setup.sh (builds it once per machine)', `or set LIFEBOAT_${name.toUpperCase()}_BIN`],
    });
  }
  return p;
}

/** The project's root (where package.json is), from dist/src or src. */
export function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/**
 * The command line that runs this CLI, for archive_command and
 * restore_command: bin/lifeboat with this Node, whatever the postmaster's PATH.
 */
export function lifeboatCommand(): string {
  return `LIFEBOAT_NODE=${process.execPath} ${path.join(projectRoot(), 'bin', 'lifeboat')}`;
}

/** The compiled CLI entry, for Lifeboat's own child processes (no shell in between). */
export function cliMain(): string {
  return path.join(projectRoot(), 'dist', 'src', 'cli', 'main.js');
}
