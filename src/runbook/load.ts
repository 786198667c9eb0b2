// Reads runbook YAML files and turns schema errors into lines an operator can
// act on at 3 a.m.: file, line, the YAML path of the field, what was expected
// and what was found:
//   runbooks/orders.yaml:12: restore.port: expected an integer between 1 and 65535, got "abc"
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { LifeboatError } from '../errors';
import { Runbook } from './schema';

export type ValidationResult = { ok: true; runbook: Runbook } | { ok: false; errors: string[] };

type Path = ReadonlyArray<PropertyKey>;

function formatPath(p: Path): string {
  let out = '';
  for (const part of p) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

function valueAt(root: unknown, p: Path): { found: boolean; value: unknown } {
  let cur: unknown = root;
  for (const part of p) {
    if (cur === null || typeof cur !== 'object' || !(part in cur)) return { found: false, value: undefined };
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return { found: true, value: cur };
}

// Fields that name a secret's variable, or look like they hold one: a value
// that fails validation there is often the secret itself, pasted by mistake,
// and error lines end up in terminals, CI logs and workflow history.
const SECRET_FIELD = /(Env|password|secret|token)$/i;

function describeValue(v: unknown): string {
  if (typeof v === 'string') {
    // Never echo credentials embedded in a URL (s3://key:secret@host/...).
    const shown = v.replace(/\/\/[^/@\s]+@/, '//***@');
    return JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown);
  }
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list of ${v.length}`;
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length === 0 ? 'an empty mapping' : `a mapping with ${keys.join(', ')}`;
  }
  return String(v);
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

/** zod's built-in messages ("Invalid input: expected object, received null") in operator words. */
function plainMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
    return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
  }
  return issue.message.replace(/^(Invalid input|Invalid option|Too small|Too big): /, '');
}

// --- Walking the schema, to say which fields are allowed where ------------

function unwrap(s: z.core.$ZodType): z.core.$ZodType {
  let cur = s;
  for (;;) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault || cur instanceof z.ZodNullable) cur = cur.unwrap();
    else if (cur instanceof z.ZodPipe) cur = cur.in;
    else return cur;
  }
}

/** The schema that validates the value at `p`; inside a union, the branch the data picks by its keys. */
function schemaAt(root: z.core.$ZodType, p: Path, data: unknown): z.core.$ZodType | undefined {
  let cur: z.core.$ZodType | undefined = root;
  for (let i = 0; i < p.length && cur; i++) {
    const part = p[i];
    const s = unwrap(cur);
    if (s instanceof z.ZodObject) cur = (s.shape as Record<string, z.core.$ZodType>)[String(part)];
    else if (s instanceof z.ZodArray) cur = s.element as z.core.$ZodType;
    else if (s instanceof z.ZodRecord) cur = s.valueType as z.core.$ZodType;
    else if (s instanceof z.ZodUnion) {
      // The branch whose fields the data uses: { redis: ... } picks the redis branch.
      const here = valueAt(data, p.slice(0, i)).value;
      const keys = here && typeof here === 'object' ? Object.keys(here) : [];
      cur = (s.options as z.core.$ZodType[]).find((o) => {
        const known = knownKeys(o);
        return known !== undefined && keys.length > 0 && keys.every((k) => known.includes(k));
      });
      i--; // re-read this path segment inside the chosen branch
    } else cur = undefined;
  }
  return cur;
}

function knownKeys(s: z.core.$ZodType): string[] | undefined {
  const u = unwrap(s);
  if (u instanceof z.ZodObject) return Object.keys(u.shape);
  if (u instanceof z.ZodRecord && u.keyType instanceof z.ZodEnum) return u.keyType.options.map(String);
  return undefined;
}

/** Edit distance, for "did you mean" on misspelt field names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

function closestKey(key: string, known: string[]): string | undefined {
  const lower = key.toLowerCase();
  // Close in spelling ("invariant"), or the same field without its suffix
  // ("url" for "urlEnv": someone about to paste a secret where a name belongs).
  const close = known
    .map((k) => ({ k, d: distance(lower, k.toLowerCase()) }))
    .filter(
      ({ k, d }) =>
        d <= Math.max(2, Math.floor(key.length / 3)) || (lower.length >= 3 && k.toLowerCase().startsWith(lower)),
    )
    .sort((a, b) => a.d - b.d)[0];
  return close?.k;
}

function unknownKeyMessage(key: string, known: string[] | undefined, suggestion: string | undefined): string {
  if (!known) return 'unknown field';
  const expected = `expected one of ${known.join(', ')}`;
  return suggestion
    ? `unknown field (did you mean ${JSON.stringify(suggestion)}?), ${expected}`
    : `unknown field, ${expected}`;
}

// --- From zod issues to problems with a path -------------------------------

interface Problem {
  path: Path;
  message: string;
  /** Point at the key (unknown fields) rather than at the value. */
  atKey?: boolean;
  /** The field is absent (rather than wrong). */
  missing?: boolean;
}

/**
 * A union reports "none of the branches matched". When the data picks one
 * branch by its fields ({ redis: { url: ... } }), the branch's own errors say
 * far more ("caches[0].redis: unknown field url"), so report those.
 */
function expandUnions(issues: readonly z.core.$ZodIssue[], prefix: Path): { issue: z.core.$ZodIssue; path: Path }[] {
  const out: { issue: z.core.$ZodIssue; path: Path }[] = [];
  for (const issue of issues) {
    const p = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const fitting = issue.errors.filter(
        (branch) => !branch.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0),
      );
      const [only] = fitting;
      if (fitting.length === 1 && only) {
        out.push(...expandUnions(only, p));
        continue;
      }
    }
    out.push({ issue, path: p });
  }
  return out;
}

function problemsOf(issues: readonly z.core.$ZodIssue[], data: unknown): Problem[] {
  const problems: Problem[] = [];
  // "redis.url: unknown field (did you mean urlEnv?)" already says urlEnv is
  // wanted; a second line "redis.urlEnv: ... missing" only adds noise.
  const suggested = new Set<string>();
  for (const { issue, path: p } of expandUnions(issues, [])) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schemaAt(Runbook, p, data) ?? Runbook);
      for (const key of issue.keys) {
        const suggestion = known && closestKey(key, known);
        if (suggestion) suggested.add(formatPath([...p, suggestion]));
        problems.push({ path: [...p, key], message: unknownKeyMessage(key, known, suggestion), atKey: true });
      }
      continue;
    }
    const msg = plainMessage(issue);
    const at = valueAt(data, p);
    if (!at.found || at.value === undefined) {
      problems.push({ path: p, message: `${msg}, but the field is missing`, missing: true });
    } else if (SECRET_FIELD.test(String(p[p.length - 1] ?? ''))) {
      problems.push({ path: p, message: `${msg}; got something else (not shown: it may be the secret itself)` });
    } else {
      problems.push({ path: p, message: `${msg}, got ${describeValue(at.value)}` });
    }
  }
  return problems.filter((pr) => pr.atKey || !pr.missing || !suggested.has(formatPath(pr.path)));
}

// --- Line numbers ----------------------------------------------------------

type Ranged = { range?: [number, number, number] | null };

/** Line of the key `p` in its parent mapping, or of the item `p` in its list. */
function keyLine(doc: Document, lc: LineCounter, p: Path): number | undefined {
  if (p.length === 0) return undefined;
  const parent = p.length === 1 ? doc.contents : doc.getIn(p.slice(0, -1) as unknown[], true);
  const last = p[p.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(last));
    const key = pair?.key as Ranged | undefined;
    if (key?.range) return lc.linePos(key.range[0]).line;
  }
  const node = doc.getIn(p as unknown[], true) as Ranged | undefined;
  return node?.range ? lc.linePos(node.range[0]).line : undefined;
}

/** Where to point for a problem: the value, else the key, else the nearest enclosing field. */
function lineOf(doc: Document, lc: LineCounter, problem: Problem): number | undefined {
  const p = problem.path;
  if (!problem.atKey) {
    const node = doc.getIn(p as unknown[], true) as Ranged | undefined;
    if (node?.range) return lc.linePos(node.range[0]).line;
  }
  for (let n = p.length; n > 0; n--) {
    const line = keyLine(doc, lc, p.slice(0, n));
    if (line !== undefined) return line;
  }
  return undefined;
}

/** Validates runbook text; `source` names the file in messages. */
export function validateRunbookText(text: string, source: string): ValidationResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `${source}:${pos.line}:${pos.col}: not valid YAML: ${e.message.split('\n')[0] ?? ''}`;
      }),
    };
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const got = data === null || data === undefined ? 'an empty file' : describeValue(data);
    return {
      ok: false,
      errors: [
        `${source}: expected a runbook (a mapping with name, cluster, repository, restore and objectives), got ${got}`,
      ],
    };
  }
  const parsed = Runbook.safeParse(data);
  if (parsed.success) return { ok: true, runbook: parsed.data };
  return {
    ok: false,
    errors: problemsOf(parsed.error.issues, data).map((problem) => {
      const line = lineOf(doc, lineCounter, problem);
      return `${source}${line === undefined ? '' : `:${line}`}: ${formatPath(problem.path)}: ${problem.message}`;
    }),
  };
}

export function runbooksDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.LIFEBOAT_RUNBOOKS_DIR ?? 'runbooks');
}

/** Whether `nameOrPath` is a path (has a '/' or a .yaml/.yml suffix) rather than a runbook name. */
function isPath(nameOrPath: string): boolean {
  return nameOrPath.includes('/') || /\.ya?ml$/.test(nameOrPath);
}

/** A runbook name is looked up as <dir>/<name>.yaml; anything with a '/' or a .yaml/.yml suffix is a path. */
export function resolveRunbookPath(nameOrPath: string, dir?: string): string {
  if (isPath(nameOrPath)) return path.resolve(nameOrPath);
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
  // Asked for "payments" but the file says "orders" (a copied runbook whose
  // name was not changed): acting on it would recover the wrong cluster's
  // backups under the wrong name in the evidence. Refuse rather than guess.
  if (!isPath(nameOrPath) && result.runbook.name !== nameOrPath) {
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `runbook ${file} was asked for as ${JSON.stringify(nameOrPath)} but is named ${JSON.stringify(result.runbook.name)}`,
      { hints: [`set name: ${nameOrPath} in ${file}, or rename the file to ${result.runbook.name}.yaml`] },
    );
  }
  return result.runbook;
}
