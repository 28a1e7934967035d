// The graphql-http audit suite (GraphQL over HTTP spec) against a running server.
//   node audit.mjs http://127.0.0.1:8000/graphql
// Prints one line per audit; exits 1 on any failed MUST (error) or SHOULD (warning).
// MAY notices are printed and allowed: the app refuses GET operations on purpose
// (CSRF, docs/graphql-limits.md), which only MAY audits ask for.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await Promise.all(serverAudits({ url }).map(({ fn }) => fn()));
const counts = { ok: 0, warn: 0, error: 0, notice: 0 };
for (const result of results) {
  counts[result.status] += 1;
  const reason = result.status === 'ok' ? '' : ` — ${result.reason}`;
  console.log(`${result.status.padEnd(6)} ${result.id} ${result.name}${reason}`);
}
console.log(
  `graphql-http audit: ${counts.ok} ok, ${counts.error} errors, ${counts.warn} warnings, ` +
    `${counts.notice} notices`,
);
process.exit(counts.error || counts.warn ? 1 : 0);
