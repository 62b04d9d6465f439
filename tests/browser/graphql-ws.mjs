// The npm `graphql-ws` client against `crm serve` (run by tests/ws_client.rs,
// which starts the server in development mode and passes, in the environment:
//   CRM_TEST_URL          http://127.0.0.1:<port>
//   CRM_TEST_AGENT_TOKEN  the AGENT token the server printed
// Checks, each through graphql-ws's `createClient` over the `ws` package:
//   1. `leadReceived` with the AGENT token receives a lead submitted over HTTP;
//   2. an AGENT's subscription naming `expiree` gets the unknown-field error;
//   3. a bad token is refused with the close code 4403.
// Prints one line per check; exits non-zero on the first failure.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { env, TIMEOUT } from './env.mjs';

const base = env('CRM_TEST_URL');
const agentToken = env('CRM_TEST_AGENT_TOKEN');
const wsUrl = `${base.replace(/^http/, 'ws')}/graphql`;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function client(token, on = {}) {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: { Authorization: `Bearer ${token}` },
    on,
  });
}

/** POST a GraphQL request; retried while the start-up sweep holds SQLite's lock. */
async function graphql(query, variables) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${agentToken}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    const retry = body.errors?.[0]?.message?.includes('retry');
    if (retry && attempt < 10) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    check(!body.errors, `GraphQL errors: ${JSON.stringify(body)}`);
    return body.data;
  }
}

const SUBMIT = 'mutation($i: SubmitLeadInput!) { submitLead(input: $i) { lead { id } } }';

// 1. A lead submitted over HTTP reaches the AGENT's subscription.
async function leadReceived() {
  let connected;
  const ready = new Promise((resolve) => (connected = resolve));
  const agent = client(agentToken, { connected: () => connected() });
  const events = [];
  let wake = () => {};
  const failed = new Promise((_, reject) => {
    agent.subscribe(
      { query: 'subscription { leadReceived { lead { id email } opportunity { id status } } }' },
      {
        next: (result) => {
          events.push(result);
          wake();
        },
        error: (error) => reject(new Error(`leadReceived failed: ${JSON.stringify(error)}`)),
        complete: () => reject(new Error('leadReceived completed early')),
      },
    );
  });
  failed.catch(() => {});
  await within(TIMEOUT, Promise.race([ready, failed]), 'connection_ack');
  // The subscribe follows the acknowledgement on the same socket; a lead
  // sent before the server read it would not be delivered, so send until
  // one is (every event must then be one of those sent).
  const sent = new Set();
  for (let i = 0; i < 20 && events.length === 0; i++) {
    const data = await graphql(SUBMIT, { i: { email: `graphql-ws-${i}@example.com` } });
    sent.add(data.submitLead.lead.id);
    await within(
      TIMEOUT,
      Promise.race([new Promise((r) => { wake = r; setTimeout(r, 300); }), failed]),
      'an event',
    );
  }
  check(events.length > 0, 'no leadReceived event arrived');
  const event = events[0];
  check(!event.errors, `errors in the event: ${JSON.stringify(event)}`);
  const lead = event.data.leadReceived.lead;
  check(sent.has(lead.id), `an event for a lead that was not sent: ${JSON.stringify(event)}`);
  check(lead.email.startsWith('graphql-ws-'), `unexpected email: ${JSON.stringify(event)}`);
  check(event.data.leadReceived.opportunity.status === 'NOUVEAU', JSON.stringify(event));
  await agent.dispose();
  console.log(`leadReceived: got lead ${lead.id}`);
}

// 2. `expiree` is not in an AGENT's schema, in a subscription as in a query.
async function expireeIsUnknownToAgents() {
  const agent = client(agentToken);
  const outcome = await within(
    TIMEOUT,
    new Promise((resolve) => {
      agent.subscribe(
        { query: 'subscription { opportunityChanged { change opportunity { id expiree } } }' },
        {
          // async-graphql reports a document that fails validation as a
          // result with errors; graphql-ws's `error` message would come here.
          next: (result) => resolve(result.errors ?? []),
          error: (error) => resolve(Array.isArray(error) ? error : [error]),
          complete: () => resolve([]),
        },
      );
    }),
    'the validation error',
  );
  await agent.dispose();
  check(outcome.length === 1, `one error expected: ${JSON.stringify(outcome)}`);
  check(
    outcome[0].message === 'Unknown field "expiree" on type "Opportunity".',
    `unexpected error: ${JSON.stringify(outcome)}`,
  );
  check(outcome[0].extensions?.code === 'GRAPHQL_VALIDATION_FAILED', JSON.stringify(outcome));
  console.log(`expiree: ${outcome[0].message}`);
}

// 3. A bad token: the socket closes with 4403.
async function badTokenIsForbidden() {
  let closedWith;
  const bad = client('not-a-token', { closed: (event) => (closedWith = event) });
  const error = await within(
    TIMEOUT,
    new Promise((resolve) => {
      bad.subscribe(
        { query: 'subscription { leadReceived { lead { id } } }' },
        { next: () => resolve(new Error('an event with a bad token')), error: resolve, complete: () => resolve(null) },
      );
    }),
    'the refusal',
  );
  await bad.dispose();
  check(error?.code === 4403, `expected close 4403, got ${error?.code} ${error?.reason}`);
  check(closedWith?.code === 4403, `the closed event: ${closedWith?.code}`);
  check(String(error.reason).startsWith('Forbidden'), `reason: ${error.reason}`);
  console.log(`bad token: closed ${error.code} ${error.reason}`);
}

try {
  await leadReceived();
  await expireeIsUnknownToAgents();
  await badTokenIsForbidden();
  console.log('graphql-ws: all checks passed');
  process.exit(0);
} catch (error) {
  console.error(`FAIL: ${error.stack ?? error}`);
  process.exit(1);
}
