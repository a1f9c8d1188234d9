// Every public page and the main workspace pages: the axe-core audit (WCAG 2.1 A and AA, no
// serious or critical violation), no sideways scrolling on a phone, and full-page screenshots
// at desktop and phone widths in tests/browser/screenshots/.
const { test, expect } = require('@playwright/test');
const h = require('./helpers');

test.describe.configure({ mode: 'serial' });

// Filled in as the story goes: a signer's links and receipt, and a petition that is delivered.
const signer = { name: 'Ціхановская Ганна', email: h.uniqueEmail('pages'), country: 'BY', disclosure: 'Addressees only' };
let receipt = '';
const delivered = { slug: `handed-over-${Date.now()}`, title: 'Open letter to the Storting on political prisoners' };

test('the front page and the petition page', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Open petitions' })).toBeVisible();
  await h.checkPage(page, 'public-home');

  await page.goto(`/p/${h.DEMO_SLUG}`);
  // The way to the form from the top (on narrow screens, where the form follows the text),
  // and the disclosure choice as one labelled group.
  await page.setViewportSize(h.PHONE);
  await expect(page.getByRole('link', { name: 'Sign this petition' })).toHaveAttribute('href', '#sign');
  await page.setViewportSize(h.DESKTOP);
  await expect(page.getByRole('group', { name: 'Who may see your name?' })).toBeVisible();
  for (const label of ['Public', 'Addressees only', 'Count only']) {
    await expect(page.getByRole('radio', { name: label, exact: true })).toBeVisible();
  }
  await h.checkPage(page, 'public-petition');
});

test('each radio button sits on the line of its own label', async ({ page }) => {
  for (const viewport of [h.DESKTOP, h.PHONE]) {
    await page.setViewportSize(viewport);
    await page.goto(`/p/${h.DEMO_SLUG}`);
    for (const id of ['public', 'recipients', 'count_only']) {
      const radio = await page.locator(`#${id}`).boundingBox();
      const label = await page.locator(`label[for="${id}"]`).boundingBox();
      const radioMiddle = radio.y + radio.height / 2;
      expect(radioMiddle, `${id}: the radio is level with its label`).toBeGreaterThan(label.y);
      expect(radioMiddle, `${id}: the radio is level with its label`).toBeLessThan(label.y + label.height);
      expect(label.x - (radio.x + radio.width), `${id}: the label follows the radio closely`).toBeLessThan(24);
      expect(label.x).toBeGreaterThan(radio.x);
    }
  }
});

test('on a wide screen the form sits beside the text', async ({ page }) => {
  await page.setViewportSize(h.DESKTOP);
  await page.goto(`/p/${h.DEMO_SLUG}`);
  const letter = await page.locator('article.petition').boundingBox();
  const form = await page.locator('section.sign').boundingBox();
  expect(form.x).toBeGreaterThanOrEqual(letter.x + letter.width);
  expect(form.y).toBeLessThan(letter.y + 200);
  // On a phone it follows the text, and the link at the top leads there.
  await page.setViewportSize(h.PHONE);
  await expect(page.getByRole('link', { name: 'Sign this petition' })).toBeInViewport();
});

test('signing: check your inbox, confirm, confirmed', async ({ page }) => {
  await h.signWithForm(page, h.DEMO_SLUG, signer);
  await h.checkPage(page, 'public-check-inbox');

  await page.goto(await h.linkInEmail(signer.email, '/confirm/'));
  await h.checkPage(page, 'public-confirm');
  await page.getByRole('button', { name: 'Confirm my signature' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('your signature is confirmed');
  await expect(page.locator('.share a')).toHaveText(`${process.env.BASE_URL}/p/${h.DEMO_SLUG}`);
  receipt = (await page.locator('#receipt').innerText()).trim();
  expect(receipt).toMatch(/^[0-9a-f]{64}$/);
  await h.checkPage(page, 'public-confirmed');
});

test('the receipt checker, before any delivery', async ({ page }) => {
  await page.goto(`/p/${h.DEMO_SLUG}/receipt?receipt=${receipt}`);
  await expect(page.getByRole('alert')).toBeVisible();
  await h.checkPage(page, 'public-receipt-not-delivered');
});

test('the withdrawal page', async ({ page }) => {
  await page.goto(await h.linkInEmail(signer.email, '/withdraw/'));
  await expect(page.getByRole('heading', { level: 1, name: 'Withdraw your signature' })).toBeVisible();
  await h.checkPage(page, 'public-withdraw');
  await page.getByRole('button', { name: 'Withdraw my signature' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Your signature is withdrawn' })).toBeVisible();
  await h.checkPage(page, 'public-withdrawn');
});

test('a link that does not work, and a page that does not exist', async ({ page }) => {
  await page.goto('/confirm/not-a-real-token');
  await h.checkPage(page, 'public-link-problem');
  const response = await page.goto('/no/such/page');
  expect(response.status()).toBe(404);
  await h.checkPage(page, 'public-not-found');
});

test('the sign-in page', async ({ page }) => {
  await page.goto('/login');
  // The password field looks like the email field above it.
  const look = (id) => page.locator(`#${id}`).evaluate((el) => {
    const style = getComputedStyle(el);
    return [style.borderTopWidth, style.borderTopColor, style.paddingLeft, style.width, style.fontSize].join(' ');
  });
  expect(await look('password')).toBe(await look('email'));
  await h.checkPage(page, 'public-login');
});

test('the workspace: home, users, new petition', async ({ page }) => {
  await h.signIn(page);
  await page.goto('/admin');
  await h.checkPage(page, 'workspace-home');
  await page.goto('/admin/users');
  await h.checkPage(page, 'workspace-users');
  await page.goto('/admin/petitions/new');
  await h.checkPage(page, 'workspace-new-petition');
});

test('the workspace: dashboard and signatures of the demo petition', async ({ page }) => {
  await h.signIn(page);
  await page.getByRole('link', { name: /Norway: join the EU/ }).click();
  await expect(page.locator('#confirmed-count')).toBeVisible();
  await h.checkPage(page, 'workspace-dashboard');
  await page.getByRole('link', { name: 'Moderate signatures' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Signatures' })).toBeVisible();
  await h.checkPage(page, 'workspace-signatures');
});

test('a delivered petition: the notice on its page and the receipt checker with a proof', async ({ page }) => {
  await h.signIn(page);
  await page.goto('/admin/petitions/new');
  await page.locator('#title').fill(delivered.title);
  await page.locator('#slug').fill(delivered.slug);
  await page.locator('#body').fill('Dear members of the Storting,\n\nWe ask you to speak up for every political prisoner in Belarus.');
  await page.locator('#targets').fill('The President of the Storting, Stortinget');
  await page.getByRole('button', { name: 'Save draft' }).click();
  await page.goto(`/admin/petitions/${delivered.slug}`);
  await page.getByRole('button', { name: /^Open/ }).click();
  await expect(page.locator('.status').first()).toHaveText('open');

  const one = { name: 'Siarhei Navumchyk', email: h.uniqueEmail('delivered'), country: 'NO' };
  await h.signWithForm(page, delivered.slug, one);
  await h.confirmFromEmail(page, one.email);
  // One signature: the plural rules say so.
  await expect(page.locator('.count')).toContainText('1 confirmed signature.');
  const theReceipt = (await page.locator('#receipt').innerText()).trim();

  await page.goto(`/admin/petitions/${delivered.slug}`);
  await page.getByLabel('Delivered to').fill('The Presidium of the Storting');
  const [bundle] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Deliver and download the bundle' }).click(),
  ]);
  expect(bundle.suggestedFilename()).toMatch(/\.zip$/);

  await page.goto(`/p/${delivered.slug}`);
  const notice = page.getByRole('region', { name: 'Handed over' });
  await expect(notice).toContainText('1 signature was handed over to The Presidium of the Storting');
  // The addressees stay a list of their own, and the notice is not part of it.
  await expect(page.getByRole('region', { name: 'To' })).not.toContainText('Presidium');
  await h.checkPage(page, 'public-petition-delivered');

  await page.getByRole('link', { name: 'Check that your signature is in the delivered bundle' }).click();
  await page.getByLabel('Your receipt').fill(theReceipt);
  await page.getByRole('button', { name: 'Check' }).click();
  await expect(page.getByRole('heading', { name: 'Yes: your signature is in the bundle' })).toBeVisible();
  await h.checkPage(page, 'public-receipt-proof');
});
