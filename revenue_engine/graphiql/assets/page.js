// GraphiQL for revenue-engine: the example query, shareable ?q=… links, the explorer plugin.
// A file rather than an inline script, so the page's CSP can forbid inline scripts.
const EXAMPLE_QUERY = `# revenue-engine: the plan catalog is public; press the run button (Ctrl-Enter).
# Tenant fields need a bearer token, or in development the headers below, e.g.
#   {"x-organization-id": "org_demo", "x-customer-email": "demo@example.com"}
{
  plans {
    uid
    name
    prices { interval amount currency }
    overages { key name }
  }
}
`;

// ?q=…&variables=… share a query (kept up to date while editing).
const parameters = {};
for (const entry of window.location.search.slice(1).split("&")) {
  const eq = entry.indexOf("=");
  if (eq >= 0) {
    parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(entry.slice(eq + 1));
  }
}

function updateURL(data) {
  Object.assign(parameters, data);
  const search = Object.keys(parameters)
    .filter((key) => Boolean(parameters[key]))
    .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
    .join("&");
  history.replaceState(null, "", "?" + search);
}

const fetcher = GraphiQL.createFetcher({ url: window.location.href.split("?")[0] });

function GraphiQLWithExplorer() {
  const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
  const [variables, setVariables] = React.useState(parameters.variables);
  const [headers, setHeaders] = React.useState(parameters.headers);
  return React.createElement(GraphiQL, {
    fetcher,
    defaultEditorToolsVisibility: true,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    query,
    variables,
    headers,
    onEditQuery: (q) => { setQuery(q); updateURL({ q }); },
    onEditVariables: (v) => { setVariables(v); updateURL({ variables: v }); },
    onEditHeaders: setHeaders,
    inputValueDeprecation: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
  });
}

ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQLWithExplorer),
);
