import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
const [url, token, expect] = process.argv.slice(2);
const client = createClient({
  url, webSocketImpl: WebSocket, retryAttempts: 0,
  connectionParams: { Authorization: `Bearer ${token}` },
  on: { closed: (e) => console.log('closed', e.code, e.reason) },
});
let n = 0;
const timer = setTimeout(() => { console.log('timeout'); process.exit(2); }, 20000);
client.subscribe(
  { query: 'subscription { leadReceived { lead { id email } opportunity { id status } } }' },
  { next: (m) => { console.log('next', JSON.stringify(m)); if (++n >= Number(expect)) { clearTimeout(timer); client.dispose(); } },
    error: (e) => { console.log('error', JSON.stringify(e.code ?? e)); clearTimeout(timer); client.dispose(); },
    complete: () => console.log('complete') },
);
console.log('subscribed');
