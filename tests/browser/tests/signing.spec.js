// A signer's story on the demo petition: sign, confirm from the email, see the count change;
// and the same with the keyboard alone.
const { test, expect } = require('@playwright/test');
const h = require('./helpers');

test('a signer signs, confirms from the email and sees the count go up', async ({ page }) => {
  await page.goto(`/p/${h.DEMO_SLUG}`);
  const before = await h.shownCount(page);

  const email = h.uniqueEmail('mouse');
  await h.signWithForm(page, h.DEMO_SLUG, { name: 'Алеся Шчарбакова', email, country: 'BY', disclosure: 'Public' });
  // Signing alone does not count.
  await page.goto(`/p/${h.DEMO_SLUG}`);
  expect(await h.shownCount(page)).toBe(before);

  await h.confirmFromEmail(page, email);
  const expected = before + 1;
  await expect(page.locator('.count')).toContainText(`${expected.toLocaleString('en-US')} confirmed signature`);
  // The address to share is the absolute one, to paste into a message.
  const share = page.locator('.share a');
  await expect(share).toHaveText(`${process.env.BASE_URL}/p/${h.DEMO_SLUG}`);

  await page.goto(`/p/${h.DEMO_SLUG}`);
  await expect.poll(async () => {
    await page.reload();
    return h.shownCount(page);
  }).toBe(expected);
  // She chose to be listed: her name is among the recent signers.
  await expect(page.locator('.recent-signers')).toContainText('Алеся Шчарбакова');
});

test('signing works with the keyboard alone', async ({ page }) => {
  const email = h.uniqueEmail('keyboard');
  await page.goto(`/p/${h.DEMO_SLUG}`);
  const servedAt = Date.now();
  const focused = () => page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.textContent.trim()));

  // From the top of the page, Tab reaches the "Sign this petition" link before the letter's
  // text; on a phone the form is 3,500 px further down. Enter follows it to the form.
  await page.setViewportSize(h.PHONE);
  let steps = 0;
  while ((await focused()) !== 'Sign this petition') {
    await page.keyboard.press('Tab');
    steps += 1;
    expect(steps, 'the link to the form is among the first few stops').toBeLessThan(8);
  }
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/#sign$/);
  await expect(page.locator('#sign-heading')).toBeInViewport();

  await page.keyboard.press('Tab');
  expect(await focused()).toBe('name');
  await page.keyboard.type('Jonas Støre-Hansen');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('email');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('country');
  // A closed select takes the first letters of an option, as people type them.
  await page.keyboard.type('Norway');
  await expect(page.locator('#country')).toHaveValue('NO');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('postal_code');
  await page.keyboard.type('0150');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('comment');
  await page.keyboard.press('Tab');
  // The radio group is one stop; the focused radio is the selected one; Space selects it.
  const radio = await focused();
  expect(['public', 'recipients', 'count_only']).toContain(radio);
  await page.keyboard.press('Space');
  await expect(page.locator(`#${radio}`)).toBeChecked();
  await page.keyboard.press('Tab');
  // The honeypot field is skipped: the next stop is the consent box.
  expect(await focused()).toBe('consent');
  await page.keyboard.press('Space');
  await expect(page.locator('#consent')).toBeChecked();
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('Sign');
  await page.waitForTimeout(Math.max(0, h.HUMAN_FILL_MS - (Date.now() - servedAt)));
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Check your inbox' })).toBeVisible();

  // Confirming by keyboard too: Tab to the button, Enter.
  const link = await h.linkInEmail(email, '/confirm/');
  await page.goto(link);
  steps = 0;
  while ((await focused()) !== 'Confirm my signature') {
    await page.keyboard.press('Tab');
    steps += 1;
    expect(steps).toBeLessThan(10);
  }
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1 })).toContainText('your signature is confirmed');
});
