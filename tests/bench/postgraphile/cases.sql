-- The case list for PostGraphile (tests/bench/bench_case_list.py applies this; not a migration).
-- The same page the app serves to a petition officer holding a grant at `unit_path`:
-- cases held in or located in that subtree, minus accusations against a unit covering the
-- grant, minus accusations naming the officer (backend/cases/visibility.py), filtered to
-- the subtree and `status`, newest first. Row-level security (pgSettings: role and
-- app.tenant_ids) keeps it inside the tenant. A STABLE SQL function is inlined by the
-- planner, so the filters reach the indexes exactly as the app's statement does.
CREATE SCHEMA IF NOT EXISTS bench_pg;
GRANT USAGE ON SCHEMA bench_pg TO xinfang_app;

CREATE OR REPLACE FUNCTION bench_pg.case_list(unit_path text, status text, username text)
RETURNS SETOF public.cases AS $$
  SELECT c.* FROM public.cases c
  WHERE (c.holder_path = unit_path
         OR (c.holder_path ~>=~ (unit_path || '/') AND c.holder_path ~<~ (unit_path || '0'))
         OR c.location_path = unit_path
         OR (c.location_path ~>=~ (unit_path || '/') AND c.location_path ~<~ (unit_path || '0')))
    AND NOT (c.type = 'ACCUSATION' AND c.accused_path IS NOT NULL
             AND (unit_path = c.accused_path OR unit_path LIKE c.accused_path || '/%'))
    AND (c.accused_username IS NULL OR c.accused_username <> username)
    AND c.status = case_list.status
  ORDER BY c.received_at DESC, c.id DESC
$$ LANGUAGE sql STABLE;

GRANT EXECUTE ON FUNCTION bench_pg.case_list(text, text, text) TO xinfang_app;
