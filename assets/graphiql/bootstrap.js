// Starts GraphiQL against this server's /graphql. Kept out of index.html so
// the page's Content-Security-Policy can forbid inline scripts.
(function () {
  'use strict';
  var PLACEHOLDER = '<paste a token>';
  var wsScheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  // One fetcher per token: subscriptions (graphql-transport-ws) carry the
  // token in the connection_init payload, which is fixed per socket.
  var fetchers = {};
  var serverFetcher = function (params, options, auth) {
    if (!fetchers[auth]) {
      fetchers = {};
      fetchers[auth] = GraphiQL.createFetcher({
        url: window.location.origin + '/graphql',
        subscriptionUrl: wsScheme + window.location.host + '/graphql',
        wsConnectionParams: { Authorization: auth },
      });
    }
    return fetchers[auth](params, options);
  };
  // Until a token is in the Headers pane, answer locally with what to do
  // instead of sending a request the server can only refuse.
  var fetcher = function (params, options) {
    var headers = (options && options.headers) || {};
    var auth = headers.Authorization || headers.authorization || '';
    if (!auth || auth.indexOf(PLACEHOLDER) !== -1) {
      return Promise.resolve({
        errors: [
          {
            message:
              'No token yet: put {"Authorization": "Bearer <token>"} in the Headers pane ' +
              '(crm serve prints tokens in development mode; otherwise `crm token`), ' +
              'then press "Re-fetch GraphQL schema".',
          },
        ],
      });
    }
    return serverFetcher(params, options, auth);
  };
  // A placeholder, never a real token: paste one printed by `crm serve`
  // (development mode) or made with `crm token`.
  var defaultHeaders = '{\n  "Authorization": "Bearer ' + PLACEHOLDER + '"\n}';
  var defaultQuery =
    '# Paste a token in the Headers pane below, then press the\n' +
    '# "Re-fetch GraphQL schema" button (or Shift+Ctrl+R) to load the docs.\n' +
    '\n' +
    '{\n' +
    '  me {\n    role\n  }\n' +
    '}\n';
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: defaultHeaders,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: 'headers',
      // Tokens stay out of localStorage.
      shouldPersistHeaders: false,
    }),
  );
})();
