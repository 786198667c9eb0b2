// The workflow boundary is held by lint (shared/CONVENTIONS.md): this runs
// the project's own eslint.config.mjs on workflow code that crosses it, and
// on code that stays inside, so a config change that silently drops a rule
// fails here rather than in a replay in production.
import * as path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

async function lintWorkflow(code: string): Promise<{ rule: string | null; line: number; message: string }[]> {
  // The file is linted from memory: it is in no tsconfig program, so
  // type-aware rules are switched off for it (the boundary rules need no types).
  const tseslint = (await import('typescript-eslint')).default;
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfig: [{ files: ['workflows/**/*.ts'], ...tseslint.configs.disableTypeChecked }],
  });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, 'workflows/lint-boundary-fixture.ts') });
  return (result?.messages ?? []).map((m) => ({ rule: m.ruleId, line: m.line, message: m.message }));
}

describe('lint under workflows/', () => {
  it('refuses Node builtins, pg, the AWS SDK and activity code, with the sandbox reason', async () => {
    const messages = await lintWorkflow(
      [
        "import { Client } from 'pg';",
        "import { readFileSync } from 'node:fs';",
        "import * as path from 'path';",
        "import { S3Client } from '@aws-sdk/client-s3';",
        "import { pushWal } from '../activities/wal';",
        'export const used = [Client, readFileSync, path, S3Client, pushWal];',
      ].join('\n'),
    );
    const restricted = messages.filter((m) => m.rule === '@typescript-eslint/no-restricted-imports');
    expect(restricted.map((m) => m.line)).toEqual([1, 2, 3, 4, 5]);
    expect(restricted[0]?.message).toContain("Temporal's deterministic sandbox");
    expect(restricted[1]?.message).toContain('Node builtins are not available there');
    expect(restricted[4]?.message).toContain('Use `import type` and call activities through proxyActivities');
  });

  it('refuses Date.now() and Math.random()', async () => {
    const messages = await lintWorkflow('export function pick(): number {\n  return Date.now() + Math.random();\n}\n');
    expect(messages.filter((m) => m.rule === 'no-restricted-properties').map((m) => m.message)).toEqual([
      expect.stringContaining('Date.now() returns the start time of the current workflow task'),
      expect.stringContaining('Math.random() is seeded from the run'),
    ]);
  });

  it('allows type-only imports of activities and the workflow SDK', async () => {
    const messages = await lintWorkflow(
      [
        "import { proxyActivities } from '@temporalio/workflow';",
        "import type * as activities from '../activities';",
        "const { ping } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute' });",
        'export async function ok(): Promise<unknown> {',
        '  return ping();',
        '}',
      ].join('\n'),
    );
    expect(messages).toEqual([]);
  });

  it('keeps the project-wide rules on for every TypeScript file: floating promises, type imports, cycles', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    for (const file of ['src/errors.ts', 'workflows/index.ts', 'test/unit/errors.test.ts']) {
      const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as {
        rules: Record<string, unknown[]>;
      };
      for (const rule of [
        '@typescript-eslint/no-floating-promises',
        '@typescript-eslint/consistent-type-imports',
        'import-x/no-cycle',
      ]) {
        expect(config.rules[rule]?.[0], `${rule} for ${file}`).toBe(2);
      }
    }
  });
});

describe('lint holds the layers (docs/ARCHITECTURE.md)', () => {
  async function lintAt(file: string, code: string): Promise<string[]> {
    const tseslint = (await import('typescript-eslint')).default;
    const eslint = new ESLint({
      cwd: ROOT,
      overrideConfig: [{ files: [file], ...tseslint.configs.disableTypeChecked }],
    });
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
    return (result?.messages ?? []).filter((m) => m.ruleId === 'import-x/no-restricted-paths').map((m) => `${m.line}`);
  }

  it('refuses domain code that imports activities, workflows, an entry point, tests or benchmarks', async () => {
    const lines = await lintAt(
      'src/restore/layer-fixture.ts',
      [
        "import { replayWal } from '../../activities/restore';",
        "import { table } from '../cli/format';",
        "import { startChatopsServer } from '../chatops/server';",
        "import { runCleanups } from '../../test/harness/cleanups';",
        "import { parseSegmentName } from '../wal/names';",
        'export const used = [replayWal, table, startChatopsServer, runCleanups, parseSegmentName];',
      ].join('\n'),
    );
    expect(lines).toEqual(['1', '2', '3', '4']);
  });

  it('refuses activities that import an entry point or test code, and lets entry points import every layer', async () => {
    expect(
      await lintAt(
        'activities/layer-fixture.ts',
        "import { table } from '../src/cli/format';\nimport { parseSegmentName } from '../src/wal/names';\nexport const used = [table, parseSegmentName];\n",
      ),
    ).toEqual(['1']);
    expect(
      await lintAt(
        'src/cli/layer-fixture.ts',
        "import { replayWal } from '../../activities/restore';\nimport { parseSegmentName } from '../wal/names';\nexport const used = [replayWal, parseSegmentName];\n",
      ),
    ).toEqual([]);
  });

  it('refuses benchmarks that import test code, and lets them import what src/dev/ shares with the tests', async () => {
    expect(
      await lintAt(
        'bench/layer-fixture.ts',
        [
          "import { startPrimary } from '../test/harness/postgres';",
          "import { startPrimary as scratch } from '../src/dev/scratch-primary';",
          "import { freePort } from '../src/dev/ports';",
          'export const used = [startPrimary, scratch, freePort];',
        ].join('\n'),
      ),
    ).toEqual(['1']);
  });
});
