// Driving the Temporal Web UI (the one `temporal server start-dev` serves,
// 2.42) in a real browser: Debian's chromium through playwright-core. Shared
// by the browser tests (test/e2e/ui-browser.test.ts, ui-repair-browser.test.ts).
import * as path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { waitFor } from './ports';
import { artifactsDir } from './services';

/** Where the browser tests' screenshots go. */
export const SHOTS = path.join(artifactsDir(), 'ui');

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Headless chromium, with nothing that talks to the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Fails (after the page's default timeout) unless the element shows. */
export async function visible(locator: Locator): Promise<void> {
  await locator.first().waitFor({ state: 'visible' });
}

/**
 * Whether the text shows in the page or in one of its frames: the UI renders
 * the summary, details and current details (markdown) in sandboxed iframes.
 */
export async function shows(page: Page, text: string, opts: { exact?: boolean } = {}): Promise<boolean> {
  for (const frame of page.frames()) {
    if (
      await frame
        .getByText(text, opts)
        .first()
        .isVisible()
        .catch(() => false)
    )
      return true;
  }
  return false;
}

/** Fails unless the text shows now (in the page or one of its frames). */
export async function showsNow(page: Page, text: string, opts: { exact?: boolean } = {}): Promise<void> {
  if (!(await shows(page, text, opts))) throw new Error(`"${text}" is not shown on ${page.url()}`);
}

/** Visibility and the page lag the workflow: reload until the text shows. */
export async function seeAfterReloads(
  page: Page,
  text: string,
  opts: { exact?: boolean } = {},
  before?: () => Promise<void>,
): Promise<void> {
  await waitFor(
    `"${text}" on ${page.url()}`,
    async () => {
      await page.reload();
      await before?.();
      // The UI polls its server for as long as a run's page is open, so
      // 'networkidle' never comes there (each wait ran out its 30 s): look
      // for the text for a few seconds as the page fills in, then reload.
      const until = Date.now() + 5_000;
      for (;;) {
        if (await shows(page, text, opts)) return true;
        if (Date.now() > until) return undefined;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    { timeoutMs: 150_000, intervalMs: 1000 },
  );
}

// The form's editors are CodeMirror textboxes whose labels do not point at
// them; the language each edits tells them apart: the input is the JSON one,
// the summary the first markdown one (the details the second).
export function jsonEditor(page: Page | Locator): Locator {
  return page.locator('[role=textbox][data-language=json]');
}
export function summaryEditor(page: Page): Locator {
  return page.locator('[role=textbox][data-language=markdown]').first();
}

/**
 * The Start Workflow form: id, task queue, type, one JSON input, and a
 * summary for the list. Screenshot `shotName` of the filled form, then start.
 */
export async function startFromForm(
  page: Page,
  ui: string,
  f: { workflowId: string; taskQueue: string; workflowType: string; input: unknown; summary: string },
  shotName: string,
): Promise<void> {
  await page.goto(`${ui}/namespaces/default/workflows/start-workflow`);
  // More options first: the form reformats the JSON when the editor loses focus, and the layout shift eats a click.
  await page.getByRole('button', { name: 'More options' }).click();
  await summaryEditor(page).click();
  await page.keyboard.insertText(f.summary);
  await page.getByLabel('Workflow ID').fill(f.workflowId);
  await page.getByLabel('Task Queue').fill(f.taskQueue);
  await page.getByLabel('Workflow Type').fill(f.workflowType);
  await jsonEditor(page).click();
  await page.keyboard.insertText(JSON.stringify(f.input));
  await page.getByLabel('Workflow Type').click();
  await shot(page, shotName);
  await page.getByRole('button', { name: 'Start Workflow' }).click();
}

/**
 * More Actions > Send an Update: pick decide, type its JSON, submit. Returns
 * the dialog: it closes on an accepted update and stays open with the
 * workflow's reason on a refused one.
 */
export async function sendUpdate(page: Page, payload: unknown, shotName?: string): Promise<Locator> {
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send an Update' }).click();
  const dialog = page.getByRole('dialog', { name: 'Send an Update' });
  await dialog.getByTestId('update-select-button').click();
  await dialog.getByRole('option', { name: /^decide Decide a step and get an answer/ }).click();
  await jsonEditor(dialog).click();
  await page.keyboard.insertText(JSON.stringify(payload));
  if (shotName) await shot(page, shotName);
  const submit = dialog.getByRole('button', { name: 'Submit' });
  await submit.focus();
  await submit.press('Enter');
  return dialog;
}

/** More Actions > Send a Signal: pick the signal by name, type its JSON, submit. */
export async function sendSignal(
  page: Page,
  name: string,
  payload: unknown,
  shotName?: string,
  whileOpen?: (dialog: Locator) => Promise<void>,
): Promise<void> {
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
  const dialog = page.getByRole('dialog', { name: 'Send a Signal' });
  await dialog.getByTestId('signal-select-button').click();
  await whileOpen?.(dialog);
  await dialog.getByRole('option', { name: new RegExp(`^${name} `) }).click();
  await jsonEditor(dialog).click();
  await page.keyboard.insertText(JSON.stringify(payload));
  if (shotName) await shot(page, shotName);
  // The editor reformats its JSON when it loses focus; a mouse click on
  // Submit would blur it, shift the layout and miss. Focus, then Enter.
  const submit = dialog.getByRole('button', { name: 'Submit' });
  await submit.focus();
  await submit.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
}
