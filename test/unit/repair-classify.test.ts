// The merge of classify.ts on small in-memory row sources: every class of
// the table, the candidate mode without A, the order check, and the
// key order it shares with PostgreSQL's COLLATE "C" on UTF-8.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classify, compareText, type PlanRow } from '../../src/repair/classify';
import type { TableShape } from '../../src/repair/keys';
import type { RowSource, TextRow } from '../../src/repair/snapshot';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repair-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const planFile = () => path.join(dir, `plan-${++n}.jsonl`);

const shape: TableShape = {
  schema: 'public',
  name: 't',
  qualified: '"public"."t"',
  columns: [
    { name: 'id', type: 'text', generated: false, identityAlways: false },
    { name: 'v', type: 'text', generated: false, identityAlways: false },
  ],
  keyColumns: ['id'],
};
function source(rows: TextRow[]): RowSource {
  const gen = (async function* () {
    for (const r of rows) yield r;
  })();
  return { shape, rows: gen, close: async () => void (await gen.return(undefined)) };
}

describe('classify', () => {
  it('puts every key in the class the issue defines and plans only restorable rows', async () => {
    const B: TextRow[] = [
      ['a', '1'],
      ['b', '1'],
      ['c', '1'],
      ['d', '1'],
      ['e', '1'],
      ['f', '1'],
      ['h', null],
    ];
    const A: TextRow[] = [
      ['a', '1'],
      ['b', '2'],
      ['c', '2'],
      ['e', '2'],
      ['g', '1'],
      ['h', ''],
    ];
    const N: TextRow[] = [
      ['a', '9'],
      ['b', '2'],
      ['c', '3'],
      ['d', '7'],
      ['g', '1'],
      ['h', ''],
      ['z', '1'],
    ];
    // a: B=A (later write is the application's) unchanged; b: damaged; c: changed since; d: deleted by the incident,
    // re-inserted since: conflict; e: changed by the incident, deleted since: conflict (insert); f: deleted by the incident;
    // g: inserted by the incident; h: NULL -> '' is a change (damaged); z: inserted since.
    const r = await classify({ before: source(B), after: source(A), now: source(N), planFile: planFile() });
    expect(r.counts).toEqual({
      damaged: 2,
      changedSince: 3,
      deletedByIncident: 1,
      insertedByIncident: 1,
      insertedSince: 1,
      unchanged: 1,
      candidate: 0,
    });
    const plan = readFileSync(r.planFile, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as PlanRow);
    expect(plan).toEqual([
      { class: 'damaged', key: ['b'], restore: ['b', '1'], expect: ['b', '2'] },
      { class: 'changedSince', key: ['c'], restore: ['c', '1'], expect: ['c', '3'] },
      { class: 'changedSince', key: ['d'], restore: ['d', '1'], expect: ['d', '7'] },
      { class: 'changedSince', key: ['e'], restore: ['e', '1'], expect: null },
      { class: 'deletedByIncident', key: ['f'], restore: ['f', '1'], expect: null },
      { class: 'damaged', key: ['h'], restore: ['h', null], expect: ['h', ''] },
    ]);
    expect(r.samples.insertedByIncident).toEqual([
      { key: { id: 'g' }, before: null, after: { id: 'g', v: '1' }, now: { id: 'g', v: '1' } },
    ]);
  });

  it('without an after target calls every difference a candidate', async () => {
    const r = await classify({
      before: source([
        ['a', '1'],
        ['b', '1'],
        ['c', '1'],
      ]),
      now: source([
        ['a', '1'],
        ['b', '2'],
        ['d', '1'],
      ]),
      planFile: planFile(),
    });
    expect(r.counts).toMatchObject({ unchanged: 1, candidate: 2, insertedSince: 1, damaged: 0 });
    expect(r.planned).toEqual({ candidate: 2 });
  });

  it('refuses rows out of key order instead of pairing the wrong rows', async () => {
    const err = await classify({
      before: source([
        ['b', '1'],
        ['a', '1'],
      ]),
      now: source([]),
      planFile: planFile(),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVARIANT_FAILED' });
    expect((err as Error).message).toContain(
      'rows of the copy at the before target are not in key order: (a) came after (b)',
    );
  });

  it('orders text by code point, as COLLATE "C" orders UTF-8 (a supplementary character after U+FFFD)', () => {
    const keys = ['\uFFFD', '😀', 'Z', 'a', 'é', '10', '9'];
    expect([...keys].sort(compareText)).toEqual(['10', '9', 'Z', 'a', 'é', '\uFFFD', '😀']);
  });
});
