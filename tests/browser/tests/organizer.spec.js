// The organiser's story: sign in, open the petition's dashboard, invalidate a signature in the
// moderation list, download an export.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const h = require('./helpers');

test('the organiser invalidates a signature and downloads an export', async ({ page }) => {
  const stamp = Date.now();
  const keep = { name: `Kept Signer ${stamp}`, email: h.uniqueEmail('kept'), country: 'LT' };
  const drop = { name: `Duplicate Signer ${stamp}`, email: h.uniqueEmail('dropped'), country: 'PL' };
  for (const signer of [keep, drop]) {
    await h.signWithForm(page, h.DEMO_SLUG, signer);
    await h.confirmFromEmail(page, signer.email);
  }

  await h.signIn(page);
  await page.getByRole('link', { name: /Norway: join the EU/ }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Norway: join the EU');
  const confirmedBefore = Number((await page.locator('#confirmed-count').innerText()).replace(/,/g, ''));
  expect(confirmedBefore).toBeGreaterThanOrEqual(2);

  await page.getByRole('link', { name: 'Moderate signatures' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Signatures' })).toBeVisible();
  await page.getByLabel('Name contains').fill(drop.name);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('#result-count')).toHaveText('1 matching signatures.');
  // The name is the label of the row's tick box.
  await page.getByLabel(drop.name, { exact: true }).check();
  await page.getByLabel(/Reason for invalidating/).fill('The same person signed twice.');
  await page.getByRole('button', { name: 'Invalidate', exact: true }).click();
  await expect(page.locator('.flash')).toBeVisible();
  const row = page.locator('tr', { hasText: drop.name });
  await expect(row.locator('.status')).toHaveText('invalidated');
  await expect(page.locator('#confirmed-count')).toHaveText(String(confirmedBefore - 1));

  // The public count follows at once.
  await page.goto(`/p/${h.DEMO_SLUG}`);
  await expect.poll(async () => {
    await page.reload();
    return h.shownCount(page);
  }).toBe(confirmedBefore - 1);

  // The export: the dashboard's form, by its button (never a URL made by hand).
  await page.goto('/admin');
  await page.getByRole('link', { name: /Norway: join the EU/ }).click();
  const exportForm = page.getByRole('form', { name: 'Export signatures' });
  await exportForm.getByLabel('Format').selectOption('csv');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    exportForm.getByRole('button', { name: 'Download' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.csv$/);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  expect(csv).toContain(keep.name);
  expect(csv, 'an invalidated signature is not exported').not.toContain(drop.name);
});
