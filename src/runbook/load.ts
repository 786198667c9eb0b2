// Reads runbook YAML files and turns schema errors into lines an operator can
// act on: `restore.port (line 12): expected an integer between 1 and 65535, got "abc"`.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { LifeboatError } from '../errors';
import { Runbook } from './schema';

export type ValidationResult = { ok: true; runbook: Runbook } | { ok: false; errors: string[] };

function formatPath(p: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of p) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

function valueAt(root: unknown, p: ReadonlyArray<PropertyKey>): { found: boolean; value: unknown } {
  let cur: unknown = root;
  for (const part of p) {
    if (cur === null || typeof cur !== 'object' || !(part in (cur as object))) return { found: false, value: undefined };
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return { found: true, value: cur };
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

function issueMessage(issue: z.core.$ZodIssue, data: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (check the spelling against runbooks/orders.example.yaml)`;
  }
  const at = valueAt(data, issue.path);
  if (!at.found || at.value === undefined) {
    const msg = issue.message.startsWith('Invalid input') ? 'required field is missing' : issue.message;
    return `${msg}${msg.includes('missing') ? '' : ', but the field is missing'}`;
  }
  return `${issue.message}, got ${describeValue(at.value)}`;
}

/** Validates runbook text; `source` names the file in messages. */
export function validateRunbookText(text: string, source: string): ValidationResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`;
      }),
    };
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, errors: [`${source}: expected a mapping with name, cluster, repository, restore and objectives`] };
  }
  const parsed = Runbook.safeParse(data);
  if (parsed.success) return { ok: true, runbook: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map((issue) => {
      const node = doc.getIn(issue.path as unknown[], true) as { range?: [number, number, number] } | undefined;
      const line = node?.range ? `:${lineCounter.linePos(node.range[0]).line}` : '';
      return `${source}${line}: ${formatPath(issue.path)}: ${issueMessage(issue, data)}`;
    }),
  };
}

export function runbooksDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.LIFEBOAT_RUNBOOKS_DIR ?? 'runbooks');
}

/** A runbook name is looked up as <dir>/<name>.yaml; anything with a '/' or a .yaml/.yml suffix is a path. */
export function resolveRunbookPath(nameOrPath: string, dir?: string): string {
  if (nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath)) return path.resolve(nameOrPath);
  const base = runbooksDir(dir);
  for (const ext of ['.yaml', '.yml']) {
    const candidate = path.join(base, `${nameOrPath}${ext}`);
    if (existsSync(candidate)) return candidate;
  }
  return path.join(base, `${nameOrPath}.yaml`);
}

export async function loadRunbook(nameOrPath: string, dir?: string): Promise<Runbook> {
  const file = resolveRunbookPath(nameOrPath, dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new LifeboatError('RUNBOOK_NOT_FOUND', `runbook ${JSON.stringify(nameOrPath)} not found at ${file}`, {
      hints: [
        'pass --runbooks-dir or set LIFEBOAT_RUNBOOKS_DIR to the folder that holds <name>.yaml',
        'or pass a path: --runbook ./runbooks/orders.yaml',
      ],
      cause: err,
    });
  }
  const result = validateRunbookText(text, file);
  if (!result.ok) {
    throw new LifeboatError('RUNBOOK_INVALID', `runbook ${file} is not valid:\n  ${result.errors.join('\n  ')}`, {
      hints: [`run: lifeboat runbook validate ${file}`],
    });
  }
  return result.runbook;
}
