// The workflow sandbox boundary covers every file the workflow bundle
// includes, not only workflows/ (issue 17: ten src/ files were bundled with
// "no Node builtins" only a comment). The bundle is built as the worker and
// the workflow tests build it; its project modules outside workflows/ must be
// exactly eslint.config.mjs's WORKFLOW_BUNDLED_SOURCES, and lint must apply
// the workflow rules to each.
import * as path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from './recovery-harness';

const ROOT = path.resolve(__dirname, '../..');

async function bundledSources(): Promise<string[]> {
  const { code } = await workflowBundle();
  // webpack writes each module as `/***/ "<id>"`; ids of our files are paths from the root.
  const ids = [...code.matchAll(/^\/\*\*\*\/ "\.\/([^"]+)"/gm)].map((m) => m[1]!);
  return [...new Set(ids.filter((id) => !id.startsWith('node_modules/')))].sort();
}

async function listedSources(): Promise<string[]> {
  const config = (await import(path.join(ROOT, 'eslint.config.mjs'))) as { WORKFLOW_BUNDLED_SOURCES: string[] };
  return [...config.WORKFLOW_BUNDLED_SOURCES].sort();
}

describe('the workflow bundle and the lint boundary', () => {
  it('bundles, outside workflows/, exactly the files eslint.config.mjs lints as workflow code', async () => {
    const bundled = await bundledSources();
    expect(bundled.filter((f) => f.startsWith('workflows/')).length).toBeGreaterThan(0);
    const outside = bundled.filter((f) => !f.startsWith('workflows/'));
    expect(
      outside,
      'a file joined or left the workflow bundle: update WORKFLOW_BUNDLED_SOURCES in eslint.config.mjs',
    ).toEqual(await listedSources());
    // Only our own TypeScript: no activity code, no bench or test code.
    for (const f of outside) expect(f).toMatch(/^src\/.+\.ts$/);
  });

  it('applies the workflow rules to every bundled file outside workflows/', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    for (const file of await listedSources()) {
      const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as {
        rules: Record<string, unknown[]>;
      };
      for (const rule of [
        '@typescript-eslint/no-restricted-imports',
        'no-restricted-globals',
        'no-restricted-properties',
      ]) {
        expect(config.rules[rule]?.[0], `${rule} for ${file}`).toBe(2);
      }
    }
  });

  it('refuses a Node builtin and process in a bundled src/ file, as in workflows/', async () => {
    const tseslint = (await import('typescript-eslint')).default;
    const [file] = await listedSources();
    const eslint = new ESLint({
      cwd: ROOT,
      // Linted from memory, so without type information (the boundary rules need none).
      overrideConfig: [{ files: [file!], ...tseslint.configs.disableTypeChecked }],
    });
    const [result] = await eslint.lintText(
      "import { readFileSync } from 'node:fs';\nexport const text = readFileSync(process.argv[1]!, 'utf8');\n",
      { filePath: path.join(ROOT, file!) },
    );
    const rules = (result?.messages ?? []).map((m) => `${m.ruleId}@${m.line}`);
    expect(rules).toContain('@typescript-eslint/no-restricted-imports@1');
    expect(rules).toContain('no-restricted-globals@2');
  });
});
