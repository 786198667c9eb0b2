// A process that runs one repair apply (src/repair/apply.ts) so that a test
// can SIGKILL it where a worker could die: inside the transaction, or after
// the commit but before it reports. It loads the TypeScript sources through
// typescript's transpileModule (the project has no tsx; this needs no build,
// so it always runs the code under test).
//
// argv[2]: JSON { connection, repairId, planFile | planFiles, holdAfterCommit? }
// (planFiles: several tables in one transaction, applyPlans; it prints the array).
// With holdAfterCommit (a path), the result is printed only once that file
// exists: a test kills the process there to stand for a worker that
// committed and died before reporting.
'use strict';
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};

const { Client } = require('pg');
const { applyPlan, applyPlans } = require('../../src/repair/apply');

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const client = new Client(opts.connection);
  await client.connect();
  const result = opts.planFiles
    ? await applyPlans(client, { repairId: opts.repairId, planFiles: opts.planFiles, approvedBy: ['alice'] })
    : await applyPlan(client, { repairId: opts.repairId, planFile: opts.planFile, approvedBy: ['alice'] });
  if (opts.holdAfterCommit) {
    while (!fs.existsSync(opts.holdAfterCommit)) await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await client.end();
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
