-- The case reads for PostGraphile (tests/bench/bench_case_list.py applies this; not a migration).
-- `bench_pg.visible_cases` is what the app lets a petition officer holding one grant at
-- `unit_path` read (backend/cases/visibility.py): cases held in or located in that subtree,
-- minus Art. 30's accusations (backend/cases/need_to_know.py barred_clause) — those naming
-- the officer, those against a unit covering the grant, those whose accused person holds a
-- staff role at a unit covering the grant. Row-level security (pgSettings: role and
-- app.tenant_ids) keeps it inside the tenant. The three reads select from it: the case
-- list (filtered to the subtree and `status`, newest first), the case detail and the
-- 红黄蓝 board (counts of the open cases by colour, the page of one colour). STABLE SQL
-- set-returning functions are inlined by the planner (nested ones too), so the filters
-- reach the indexes exactly as the app's statements do.
CREATE SCHEMA IF NOT EXISTS bench_pg;
GRANT USAGE ON SCHEMA bench_pg TO xinfang_app;

CREATE OR REPLACE FUNCTION bench_pg.visible_cases(unit_path text, username text)
RETURNS SETOF public.cases AS $$
  SELECT c.* FROM public.cases c
  WHERE (c.holder_path = unit_path
         OR (c.holder_path ~>=~ (unit_path || '/') AND c.holder_path ~<~ (unit_path || '0'))
         OR c.location_path = unit_path
         OR (c.location_path ~>=~ (unit_path || '/') AND c.location_path ~<~ (unit_path || '0')))
    AND NOT (c.type = 'ACCUSATION' AND (
      (c.accused_username IS NOT NULL AND c.accused_username = visible_cases.username)
      OR (c.accused_path IS NOT NULL
          AND (unit_path = c.accused_path OR unit_path LIKE c.accused_path || '/%'))
      OR (c.accused_username IS NOT NULL AND EXISTS (
        SELECT 1 FROM public.role_assignments ra
        JOIN public.users x ON x.tenant_id = ra.tenant_id AND x.id = ra.user_id
        JOIN public.org_units ou ON ou.tenant_id = ra.tenant_id AND ou.id = ra.org_unit_id
        WHERE x.tenant_id = c.tenant_id AND x.username = c.accused_username
          AND ra.role IN ('CITY_ADMIN', 'DEPARTMENT_HANDLER', 'GRID_WORKER', 'LEADER',
                          'PETITION_OFFICER', 'PLATFORM_ADMIN', 'PROVINCIAL_SUPERVISOR')
          AND (unit_path = ou.path OR unit_path LIKE ou.path || '/%')))))
$$ LANGUAGE sql STABLE;

-- the list had this signature before the detail and the board came: replace it as it was
CREATE OR REPLACE FUNCTION bench_pg.case_list(unit_path text, status text, username text)
RETURNS SETOF public.cases AS $$
  SELECT c.* FROM bench_pg.visible_cases(unit_path, username) c
  WHERE c.status = case_list.status
  ORDER BY c.received_at DESC, c.id DESC
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION bench_pg.case_detail(case_id uuid, unit_path text, username text)
RETURNS public.cases AS $$
  SELECT c.* FROM bench_pg.visible_cases(unit_path, username) c WHERE c.id = case_id
$$ LANGUAGE sql STABLE;

DO $$ BEGIN
  CREATE TYPE bench_pg.board_counts AS (red integer, yellow integer, blue integer);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- open = not closed, or closed with a follow-up duty still running (queries.warning_counts)
CREATE OR REPLACE FUNCTION bench_pg.warning_counts(unit_path text, username text)
RETURNS bench_pg.board_counts AS $$
  SELECT count(*) FILTER (WHERE c.warning_color = 'RED')::integer,
         count(*) FILTER (WHERE c.warning_color = 'YELLOW')::integer,
         count(*) FILTER (WHERE c.warning_color = 'BLUE')::integer
  FROM bench_pg.visible_cases(unit_path, username) c
  WHERE c.status <> 'CLOSED' OR c.due_at IS NOT NULL
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION bench_pg.board_cases(unit_path text, color text, username text)
RETURNS SETOF public.cases AS $$
  SELECT c.* FROM bench_pg.visible_cases(unit_path, username) c
  WHERE c.warning_color = board_cases.color
  ORDER BY c.received_at DESC, c.id DESC
$$ LANGUAGE sql STABLE;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bench_pg TO xinfang_app;
