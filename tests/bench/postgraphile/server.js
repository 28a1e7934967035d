// PostGraphile 4 for tests/bench/bench_case_list.py: the same database, the same RLS claims.
// Env: DATABASE_URL (owner), PORT, PG_ROLE (the app role), TENANT_IDS, POOL_SIZE.
const http = require("http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");

const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_SIZE || 10),
  // as the app's connections run (backend/core/db.py): no JIT compile per statement
  options: "-c jit=off",
});
const handler = postgraphile(pool, ["bench_pg", "public"], {
  pgSettings: async () => ({ role: process.env.PG_ROLE, "app.tenant_ids": process.env.TENANT_IDS }),
  disableQueryLog: true,
  graphiql: false,
  ignoreRBAC: true,
  setofFunctionsContainNulls: false,
  disableDefaultMutations: true,
  retryOnInitFail: false,
});
http.createServer(handler).listen(Number(process.env.PORT), "127.0.0.1");
