// Real-browser test of /graphiql: headless system Chromium, nothing but
// loopback reachable. Run by tests/browser.rs (`cargo test`), which starts
// `crm serve` and passes, in the environment:
//   CRM_TEST_URL          http://127.0.0.1:<port>
//   CRM_TEST_ADMIN_TOKEN  an ADMIN token for that server
//   CRM_TEST_AGENT_TOKEN  an AGENT token for that server
//   CRM_TEST_ARTIFACTS    directory for screenshots
//   CHROMIUM              browser binary (default /usr/bin/chromium)
// Exits non-zero with a message on the first failed expectation.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { env, TIMEOUT } from './env.mjs';

const base = env('CRM_TEST_URL');
const adminToken = env('CRM_TEST_ADMIN_TOKEN');
const agentToken = env('CRM_TEST_AGENT_TOKEN');
const artifacts = env('CRM_TEST_ARTIFACTS');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const baseHost = new URL(base).host;
if (!/^127\.0\.0\.1:\d+$/.test(baseHost)) throw new Error(`not a loopback URL: ${base}`);
// Screenshots of this run only.
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const offHost = []; // every request to anything but the server
const cspViolations = [];
const placeholderSent = []; // requests that went out with the header pane's placeholder
const pageErrors = [];

const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: TIMEOUT,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    // No --user-data-dir: Playwright gives every launch a fresh temporary
    // profile of its own (and refuses the flag).
  ],
});

async function openGraphiql(name, token) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Anything not addressed to the server is aborted and recorded.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.host === baseHost && url.protocol === 'http:') {
      if ((route.request().headers().authorization || '').includes('<paste a token>')) {
        placeholderSent.push(`${name}: ${route.request().url()}`);
      }
      return route.continue();
    }
    offHost.push(`${name}: ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) {
      cspViolations.push(`${name}: ${m.text()}`);
    }
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content-Security-Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });

  const response = await page.goto(`${base}/graphiql`, { waitUntil: 'load' });
  check(response && response.status() === 200, `${name}: /graphiql answered ${response?.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'"), `${name}: no CSP on /graphiql: ${csp}`);

  // The header editor is open (defaultEditorToolsVisibility) and holds a
  // placeholder, never a token.
  const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
  await headers.waitFor();
  const placeholder = await headers.evaluate((el) => el.CodeMirror.getValue());
  check(/<paste a token>/.test(placeholder), `${name}: unexpected header pane: ${placeholder}`);
  await headers.evaluate(
    (el, value) => el.CodeMirror.setValue(value),
    JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2),
  );

  // GraphiQL answered its first introspection locally (no token yet): fetch again.
  const introspected = page.waitForResponse(
    (r) =>
      r.url() === `${base}/graphql` &&
      (r.request().postData() || '').includes('__schema') &&
      r.request().headers().authorization === `Bearer ${token}`,
  );
  // GraphiQL takes in editor changes after a debounce: press "Re-fetch"
  // until the introspection goes out with the new header.
  let introspection = null;
  introspected.then((r) => (introspection = r), () => {});
  const refetch = page.getByRole('button', { name: 'Re-fetch GraphQL schema' });
  for (const started = Date.now(); !introspection && Date.now() - started < TIMEOUT; ) {
    await refetch.click();
    await Promise.race([introspected, page.waitForTimeout(500)]).catch(() => {});
  }
  check(introspection, `${name}: GraphiQL never introspected with the token`);
  const schemaBody = await introspection.json();
  check(
    introspection.status() === 200 && schemaBody.data && schemaBody.data.__schema,
    `${name}: introspection failed: ${introspection.status()} ${JSON.stringify(schemaBody).slice(0, 400)}`,
  );
  return { context, page };
}

async function setQuery(page, query) {
  await page
    .locator('.graphiql-query-editor .CodeMirror')
    .evaluate((el, value) => el.CodeMirror.setValue(value), query);
}

async function runQuery(page) {
  const answered = page.waitForResponse(
    (r) => r.url() === `${base}/graphql` && !(r.request().postData() || '').includes('__schema'),
  );
  await page.locator('.graphiql-execute-button').click();
  const response = await answered;
  // Wait until the result pane shows the answer.
  const result = page.locator('.graphiql-response .CodeMirror');
  await page.waitForFunction(
    (el) => el.CodeMirror.getValue().includes('"data"') || el.CodeMirror.getValue().includes('"errors"'),
    await result.elementHandle(),
  );
  return { status: response.status(), shown: JSON.parse(await result.evaluate((el) => el.CodeMirror.getValue())) };
}

/** Open the docs explorer on `Opportunity`; the field names listed. */
async function opportunityFields(page) {
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  const search = page.locator('.graphiql-doc-explorer-search input');
  await search.fill('Opportunity');
  await page
    .locator('.graphiql-doc-explorer-search [role="option"]', { hasText: /^Opportunity$/ })
    .first()
    .click();
  await page.locator('.graphiql-doc-explorer-title', { hasText: /^Opportunity$/ }).waitFor();
  const fields = page.locator('.graphiql-doc-explorer-field-name');
  await fields.first().waitFor();
  return fields.allInnerTexts();
}

let failed = false;
try {
  // ADMIN: a query that returns `expiree`, then the docs show it.
  {
    const { context, page } = await openGraphiql('admin', adminToken);
    // Autocompletion from the introspected schema: typing offers the field.
    await setQuery(page, '{\n  \n}\n');
    await page
      .locator('.graphiql-query-editor .CodeMirror')
      .evaluate((el) => {
        el.CodeMirror.focus();
        el.CodeMirror.setCursor({ line: 1, ch: 2 });
      });
    await page.keyboard.type('opportun');
    await page.locator('.CodeMirror-hints .CodeMirror-hint', { hasText: /^opportunities$/ }).waitFor();
    await page.keyboard.press('Escape');
    await setQuery(
      page,
      '{\n  opportunities(first: 5) {\n    nodes {\n      id\n      status\n      expiree\n      expiredAt\n    }\n  }\n}\n',
    );
    const { status, shown } = await runQuery(page);
    const nodes = shown?.data?.opportunities?.nodes;
    check(
      status === 200 && Array.isArray(nodes) && nodes.length > 0 && nodes.every((n) => n.expiree === false),
      `admin: the query did not return expiree: ${status} ${JSON.stringify(shown).slice(0, 400)}`,
    );
    await page.screenshot({ path: join(artifacts, 'graphiql-admin-query.png') });
    const fields = await opportunityFields(page);
    check(fields.includes('expiree'), `admin: docs for Opportunity lack expiree: ${fields.join(', ')}`);
    await page.screenshot({ path: join(artifacts, 'graphiql-admin-docs.png') });

    // A subscription over graphql-transport-ws, the token in connection_init:
    // a lead submitted meanwhile shows in the result pane.
    const subscribed = new Promise((resolve, reject) => {
      page.on('websocket', (ws) => {
        check(ws.url() === `${base.replace('http:', 'ws:')}/graphql`, `admin: socket to ${ws.url()}`);
        ws.on('framesent', (frame) => {
          const text = String(frame.payload);
          if (text.includes('"connection_init"') && !text.includes(adminToken)) {
            reject(new Error(`admin: connection_init without the token: ${text}`));
          }
          if (text.includes('"subscribe"')) resolve();
        });
      });
      setTimeout(() => reject(new Error('admin: no subscription went out')), TIMEOUT);
    });
    await setQuery(page, 'subscription {\n  leadReceived {\n    lead {\n      id\n      source\n    }\n  }\n}\n');
    // GraphiQL re-parses the editor after a debounce; the parsed document is
    // what tells it to use the socket.
    await page.waitForTimeout(800);
    await page.locator('.graphiql-execute-button').click();
    await subscribed;
    // The server acknowledges the subscription before it sees the next lead.
    await page.waitForTimeout(300);
    const lead = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({
        query: 'mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }',
        variables: { i: { email: 'graphiql-live@example.com', source: 'browser-subscription' } },
      }),
    }).then((r) => r.json());
    const leadId = lead?.data?.submitLead?.lead?.id;
    check(leadId, `admin: submitLead failed: ${JSON.stringify(lead)}`);
    const result = page.locator('.graphiql-response .CodeMirror');
    await page.waitForFunction(
      ([el, id]) => el.CodeMirror.getValue().includes(id),
      [await result.elementHandle(), leadId],
    );
    await page.screenshot({ path: join(artifacts, 'graphiql-admin-subscription.png') });
    await context.close();
  }
  // AGENT: the same docs have no `expiree`.
  {
    const { context, page } = await openGraphiql('agent', agentToken);
    const fields = await opportunityFields(page);
    check(fields.includes('status'), `agent: docs for Opportunity look empty: ${fields.join(', ')}`);
    check(!fields.includes('expiree') && !fields.includes('expiredAt'), `agent: docs show ${fields.join(', ')}`);
    await page.screenshot({ path: join(artifacts, 'graphiql-agent-docs.png') });
    await context.close();
  }
  check(placeholderSent.length === 0, `requests sent with the placeholder:\n${placeholderSent.join('\n')}`);
  check(offHost.length === 0, `requests to other hosts were attempted:\n${offHost.join('\n')}`);
  check(cspViolations.length === 0, `Content-Security-Policy violations:\n${cspViolations.join('\n')}`);
  check(pageErrors.length === 0, `errors in the page:\n${pageErrors.join('\n')}`);
  console.log(`browser test passed; screenshots in ${artifacts}`);
} catch (error) {
  failed = true;
  console.error(`browser test FAILED: ${error.message}`);
  if (offHost.length) console.error(`off-host requests:\n${offHost.join('\n')}`);
  if (cspViolations.length) console.error(`CSP violations:\n${cspViolations.join('\n')}`);
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  for (const context of browser.contexts()) {
    for (const [i, page] of context.pages().entries()) {
      await page.screenshot({ path: join(artifacts, `failure-${i}.png`) }).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
