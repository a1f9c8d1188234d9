// Shared steps of the browser stories: reading the instance's emails, signing, signing in,
// the accessibility audit, screenshots and the overflow check.
const fs = require('fs');
const path = require('path');
const { expect } = require('@playwright/test');
const { AxeBuilder } = require('@axe-core/playwright');

const DEMO_SLUG = 'belarus-political-prisoners';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SCREENSHOTS = path.join(__dirname, '..', 'screenshots');
// The server holds back a form sent less than two seconds after the page was served; people
// take longer than that, and so do these tests.
const HUMAN_FILL_MS = 2_500;

function mailDir() {
  const dir = process.env.MAIL_DIR;
  if (!dir) throw new Error('MAIL_DIR is not set: run the tests through run.sh');
  return dir;
}

// A message's decoded text/plain part. The server writes MIME messages (lettre); this reads
// just enough of MIME for them: multipart bodies, quoted-printable and base64.
function textPart(raw) {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join('\n\n');
  const headers = head.replace(/\r?\n[ \t]+/g, ' ');
  const type = (headers.match(/^content-type:\s*([^;\r\n]+)/im) || [, 'text/plain'])[1].trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = (headers.match(/boundary="?([^";\r\n]+)"?/i) || [])[1];
    if (!boundary) return '';
    for (const part of body.split('--' + boundary).slice(1)) {
      if (part.startsWith('--')) break;
      const text = textPart(part.replace(/^\r?\n/, ''));
      if (text) return text;
    }
    return '';
  }
  if (type !== 'text/plain') return '';
  const encoding = (headers.match(/^content-transfer-encoding:\s*(\S+)/im) || [, '7bit'])[1].toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

// Waits for the emails to `address` (as .eml files in MAIL_DIR) and returns their text parts,
// oldest first.
async function emailsTo(address, atLeast = 1) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const dir = mailDir();
    const found = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((name) => name.endsWith('.eml'))
          .sort()
          .map((name) => fs.readFileSync(path.join(dir, name), 'utf8'))
          .filter((raw) => {
            const head = raw.split(/\r?\n\r?\n/)[0];
            return new RegExp('^to:.*' + address.replace(/[.+]/g, '\\$&'), 'im').test(head.replace(/\r?\n[ \t]+/g, ' '));
          })
          .map(textPart)
      : [];
    if (found.length >= atLeast) return found;
    if (Date.now() > deadline) throw new Error(`no email to ${address} arrived in ${dir}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// The link of the given kind ('/confirm/', '/withdraw/') in the newest email to `address`
// that has one, as a path on the instance.
async function linkInEmail(address, kind) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const emails = await emailsTo(address);
    for (const text of emails.reverse()) {
      const match = text.match(new RegExp('https?://[^\\s<>"]*' + kind + '[A-Za-z0-9_-]+'));
      if (match) return new URL(match[0]).pathname;
    }
    if (Date.now() > deadline) throw new Error(`no ${kind} link in the emails to ${address}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function uniqueEmail(label) {
  return `${label}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@signers.example`;
}

// The public page's count, as a number ("1,234 confirmed signatures" → 1234).
async function shownCount(page) {
  const text = await page.locator('.tally .count strong').innerText();
  return Number(text.replace(/,/g, ''));
}

// Fills the signing form with the mouse and submits it; returns when "Check your inbox" shows.
async function signWithForm(page, slug, signer) {
  await page.goto(`/p/${slug}`);
  const servedAt = Date.now();
  await page.getByLabel('Your name').fill(signer.name);
  await page.getByLabel('Email address').fill(signer.email);
  await page.getByLabel('Country').selectOption(signer.country || 'NO');
  if (signer.disclosure) await page.getByRole('radio', { name: signer.disclosure, exact: true }).check();
  await page.getByLabel(/I agree that my signature/).check();
  await page.waitForTimeout(Math.max(0, HUMAN_FILL_MS - (Date.now() - servedAt)));
  await page.locator('form[action$="/sign"] button[type="submit"]').click();
  await expect(page.getByRole('heading', { level: 1, name: 'Check your inbox' })).toBeVisible();
}

// Opens the confirmation link from the signer's email and presses the button.
async function confirmFromEmail(page, email) {
  const link = await linkInEmail(email, '/confirm/');
  await page.goto(link);
  await expect(page.getByRole('heading', { level: 1, name: 'Confirm your signature' })).toBeVisible();
  await page.getByRole('button', { name: 'Confirm my signature' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('your signature is confirmed');
}

async function signIn(page) {
  await page.goto('/login');
  await page.getByLabel('Email address').fill(process.env.ADMIN_EMAIL);
  await page.getByLabel('Password').fill(process.env.ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Workspace' })).toBeVisible();
}

// axe-core with the WCAG 2.1 A and AA rules (contrast included): no serious or critical
// violation may remain. The message names each rule and the elements it found.
async function expectAccessible(page, label) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  const grave = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const report = grave
    .map((v) => `${v.impact} ${v.id}: ${v.help}\n` + v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary}`).join('\n'))
    .join('\n');
  expect(grave.length, `axe on ${label}:\n${report}`).toBe(0);
  return results;
}

async function expectNoHorizontalOverflow(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  expect(scrollWidth, `${label} is wider than the screen`).toBeLessThanOrEqual(innerWidth);
}

// Text that runs out of its box (a long hash in a narrow column) does not always widen the
// page; this finds the boxes whose content is wider than they are, scroll containers and form
// fields (whose text scrolls inside them) excepted.
async function expectNothingSticksOut(page, label) {
  const culprits = await page.evaluate(() => {
    const found = [];
    for (const el of document.querySelectorAll('main *')) {
      if (['INPUT', 'TEXTAREA', 'SELECT', 'OPTION', 'svg'].includes(el.tagName) || el.closest('svg')) continue;
      const style = getComputedStyle(el);
      if (style.display === 'inline' || style.display === 'none') continue;
      if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX)) continue;
      if (el.closest('.table-scroll, .visually-hidden, .trap')) continue;
      if (el.scrollWidth > el.clientWidth + 1) {
        found.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + String(el.className).replace(/ /g, '.') : ''}: ${el.scrollWidth} > ${el.clientWidth} (${el.textContent.trim().slice(0, 40)})`);
      }
    }
    return found;
  });
  expect(culprits, `${label}: content wider than its box`).toEqual([]);
}

// Full-page screenshots of the current page at desktop and phone widths, the audit at both,
// and the overflow check at phone width. Leaves the page at desktop width.
async function checkPage(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.setViewportSize(DESKTOP);
  await expectAccessible(page, `${name} (desktop)`);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await expectNoHorizontalOverflow(page, `${name} at ${PHONE.width} px`);
  await expectNothingSticksOut(page, `${name} at ${PHONE.width} px`);
  await expectAccessible(page, `${name} (phone)`);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

module.exports = {
  DEMO_SLUG,
  DESKTOP,
  PHONE,
  HUMAN_FILL_MS,
  emailsTo,
  linkInEmail,
  uniqueEmail,
  shownCount,
  signWithForm,
  confirmFromEmail,
  signIn,
  expectAccessible,
  expectNoHorizontalOverflow,
  expectNothingSticksOut,
  checkPage,
};
