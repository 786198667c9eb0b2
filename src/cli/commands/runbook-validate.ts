// `lifeboat runbook validate <file...> [--json]`: checks runbook files against
// the schema before anyone relies on them in an incident. Every problem of
// every file is printed (file:line: yaml.path: expected ..., got ...), not
// just the first, so one run fixes a file. Exit 0 when all are valid, 2 when
// any is not (shared/DESIGN.md §9: bad input).
import { readFile } from 'node:fs/promises';
import { validateRunbookText } from '../../runbook/load';
import { errorMessage } from '../../errors';
import { EXIT, printJson } from '../run';

export interface FileResult {
  file: string;
  ok: boolean;
  name?: string;
  errors?: string[];
}

export async function validateFile(file: string): Promise<FileResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, expected a YAML file'
          : errorMessage(err);
    return { file, ok: false, errors: [`${file}: cannot read: ${why}`] };
  }
  // Messages name the file as the operator typed it, so they can paste it back.
  const result = validateRunbookText(text, file);
  return result.ok ? { file, ok: true, name: result.runbook.name } : { file, ok: false, errors: result.errors };
}

export async function run(opts: { files?: string[]; json?: boolean }): Promise<number> {
  const files = opts.files ?? [];
  const results: FileResult[] = [];
  for (const file of files) results.push(await validateFile(file));

  if (opts.json) {
    printJson(results);
  } else {
    for (const r of results) {
      if (r.ok) process.stdout.write(`ok ${r.file} (runbook ${r.name ?? '?'})\n`);
      else process.stderr.write(`${(r.errors ?? []).join('\n')}\n`);
    }
    const bad = results.filter((r) => !r.ok).length;
    if (bad > 0)
      process.stderr.write(`${bad} of ${results.length} runbook file${results.length > 1 ? 's' : ''} not valid\n`);
  }
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.usage;
}
