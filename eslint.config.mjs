// Lint holds the boundaries that the compiler cannot (shared/CONVENTIONS.md):
// - everywhere: promises are awaited or explicitly voided, type-only imports
//   say so (they vanish from the emitted JavaScript, which keeps the
//   workflow bundle and the per-segment archive-push start-up small), and no
//   import cycles (they make `undefined` appear at load time in CommonJS);
// - under workflows/, and in every other file the workflow bundle includes
//   (WORKFLOW_BUNDLED_SOURCES): nothing that cannot run in Temporal's sandbox.
import { builtinModules } from 'node:module';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { importX, createNodeResolver } from 'eslint-plugin-import-x';
import globals from 'globals';

const SANDBOX = "Workflow code runs in Temporal's deterministic sandbox and is replayed from history on any worker;";

// Every Node builtin, bare and with the node: prefix ('fs', 'fs/promises', 'node:fs', ...).
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));

/** Imports that would break the workflow bundle or replay. Type-only imports are erased, so they stay allowed. */
const workflowRestrictedImports = {
  paths: nodeBuiltins.map((name) => ({
    name,
    allowTypeImports: true,
    message: `${SANDBOX} Node builtins are not available there. Do file, process and network work in an activity (activities/).`,
  })),
  patterns: [
    {
      group: ['node:*'],
      allowTypeImports: true,
      message: `${SANDBOX} Node builtins are not available there. Do file, process and network work in an activity (activities/).`,
    },
    {
      group: ['pg', 'pg/*', 'execa', 'execa/*', '@aws-sdk/*', '@mongodb-js/zstd', 'yaml', 'yaml/*'],
      allowTypeImports: true,
      message: `${SANDBOX} I/O libraries (pg, execa, S3, zstd, YAML files) belong in activities; the workflow calls them through proxyActivities.`,
    },
    {
      group: [
        '@temporalio/worker',
        '@temporalio/worker/*',
        '@temporalio/client',
        '@temporalio/client/*',
        '@temporalio/activity',
      ],
      allowTypeImports: true,
      message: `${SANDBOX} only @temporalio/workflow (and @temporalio/common) are bundled into it.`,
    },
    {
      group: ['**/activities', '**/activities/*', '**/activities/**'],
      allowTypeImports: true,
      message: `${SANDBOX} importing activity code would bundle its side effects into the workflow. Use \`import type\` and call activities through proxyActivities with explicit timeouts.`,
    },
  ],
};

/**
 * The files outside workflows/ that the workflow bundle includes (contracts,
 * the runbook schema, names): they run in the sandbox too, so the workflow
 * rules cover them. test/workflow/bundle-boundary.test.ts bundles the
 * workflows and fails when this list and the bundle differ, so a new import
 * into workflow code cannot leave a file outside the boundary.
 */
export const WORKFLOW_BUNDLED_SOURCES = [
  'src/checkpoint/label.ts',
  'src/drill/contract.ts',
  'src/errors.ts',
  'src/recovery/contract.ts',
  'src/recovery/decisions.ts',
  'src/recovery/messages.ts',
  'src/recovery/operators.ts',
  'src/recovery/repository-sources.ts',
  'src/recovery/search-attributes.ts',
  'src/recovery/steps.ts',
  'src/recovery/target.ts',
  'src/repair/contract.ts',
  'src/repository/layout.ts',
  'src/runbook/approvals.ts',
  'src/runbook/backup.ts',
  'src/runbook/checks.ts',
  'src/runbook/cluster.ts',
  'src/runbook/endpoints.ts',
  'src/runbook/engine.ts',
  'src/runbook/fields.ts',
  'src/runbook/gates.ts',
  'src/runbook/instances.ts',
  'src/runbook/repository.ts',
  'src/runbook/schema.ts',
  'src/traffic/host.ts',
  'src/wal/names.ts',
];

/** Where a process starts: they may import every layer below them (docs/ARCHITECTURE.md). */
const ENTRY_POINTS = ['src/cli/**', 'src/chatops/**', 'src/metrics/**', 'src/dev/**', 'src/worker.ts'];

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'test-artifacts/', '.lifeboat/', 'coverage/']),

  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { globals: { ...globals.node } },
  },

  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: {
        // One program over every .ts file, tests included, so type-aware rules
        // (no-floating-promises) also catch an un-awaited `expect(...).rejects`.
        project: './tsconfig.eslint.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json', '.node'] })],
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: {
      // An un-awaited promise in a workflow is a step that silently never ran;
      // in an activity it is an error that never reaches Temporal.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      // `typeof import('x')` stays allowed: it types a module loaded lazily, which
      // keeps archive-push (run once per WAL segment) from loading what it rarely needs.
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // package.json is read with require() so that tsc does not copy it into dist/.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['/package\\.json$'] }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },

  {
    files: ['workflows/**/*.ts', ...WORKFLOW_BUNDLED_SOURCES],
    rules: {
      // The typescript-eslint variant, because it understands `allowTypeImports`.
      '@typescript-eslint/no-restricted-imports': ['error', workflowRestrictedImports],
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: `${SANDBOX} there Date.now() returns the start time of the current workflow task and does not move while code runs, so it measures nothing. Wait with sleep()/condition() and take measured times from activity results.`,
        },
        {
          object: 'Math',
          property: 'random',
          message: `${SANDBOX} there Math.random() is seeded from the run so that replays repeat it. Use uuid4() from @temporalio/workflow for ids, or choose random values (a drill target) in an activity.`,
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          // `globalThis.Date.now()` and `performance.now()` slip past no-restricted-properties.
          selector:
            "MemberExpression[property.name='now'][object.type='MemberExpression'][object.property.name='Date']",
          message: `${SANDBOX} Date.now() there is the workflow task's start time, not a clock.`,
        },
        {
          selector: "MemberExpression[object.name='performance'][property.name='now']",
          message: `${SANDBOX} performance.now() is not deterministic on replay.`,
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: `${SANDBOX} there is no process there; pass configuration in the workflow input.` },
        { name: 'Buffer', message: `${SANDBOX} Buffer does not exist there; use Uint8Array or strings.` },
        { name: 'require', message: `${SANDBOX} use static imports so that the bundler sees them.` },
      ],
    },
  },

  {
    // The layers (docs/ARCHITECTURE.md): entry points (src/cli, src/chatops,
    // src/metrics, src/dev, src/worker.ts) may import everything below them;
    // activities/ adapt the domain to Temporal; the domain (the rest of src/)
    // imports neither, nor workflows/, nor test or bench code.
    files: ['src/**/*.ts'],
    ignores: ENTRY_POINTS,
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: './src',
              from: [
                './activities',
                './workflows',
                './test',
                './bench',
                ...ENTRY_POINTS.map((p) => `./${p.replace(/\/\*\*$/, '')}`),
              ],
              message:
                'Domain code (src/ outside its entry points) is imported by activities and entry points, never the other way round (docs/ARCHITECTURE.md). Move what both need down into the domain, or call it from the entry point.',
            },
          ],
        },
      ],
    },
  },

  {
    files: ['activities/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: './activities',
              from: ['./test', './bench', ...ENTRY_POINTS.map((p) => `./${p.replace(/\/\*\*$/, '')}`)],
              message:
                'Activities adapt the domain (src/) to Temporal; entry points, tests and benchmarks use them, never the other way round (docs/ARCHITECTURE.md).',
            },
          ],
        },
      ],
    },
  },

  {
    // Benchmarks start their servers with src/dev/ (scratch-primary, ports,
    // repair-db), as the tests do; test code is not theirs to import.
    files: ['bench/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: './bench',
              from: ['./test'],
              message:
                'Benchmarks may not import test code (docs/ARCHITECTURE.md): what both need lives in src/dev/ (a scratch primary, free ports, the repair database).',
            },
          ],
        },
      ],
    },
  },

  {
    // Plain JavaScript (this file, bin/ scripts): no type information.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
