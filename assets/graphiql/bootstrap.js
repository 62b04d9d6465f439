// Starts GraphiQL against this server's /graphql. Kept out of index.html so
// the page's Content-Security-Policy can forbid inline scripts.
(function () {
  'use strict';
  var fetcher = GraphiQL.createFetcher({
    url: window.location.origin + '/graphql',
  });
  // A placeholder, never a real token: paste one printed by `crm serve`
  // (development mode) or made with `crm token`.
  var defaultHeaders = '{\n  "Authorization": "Bearer <paste a token>"\n}';
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
