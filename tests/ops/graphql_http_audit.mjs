// Runs the graphql-http server audits (the GraphQL over HTTP spec's conformance suite) against
// DOSSIER_AUDIT_URL, every request carrying DOSSIER_AUDIT_TOKEN (there is no anonymous GraphQL),
// and prints one JSON line per audit: {id, name, status, reason}.
import { auditServer } from 'graphql-http';

const url = process.env.DOSSIER_AUDIT_URL;
const token = process.env.DOSSIER_AUDIT_TOKEN;

function withToken(input, init = {}) {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: withToken });
for (const result of results) {
  const reason = result.status === 'ok' ? null : String(result.reason);
  console.log(JSON.stringify({ id: result.id, name: result.name, status: result.status, reason }));
}
