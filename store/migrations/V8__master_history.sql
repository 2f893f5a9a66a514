-- Master data as effective-dated history (CONTRACT §3): a change records from when it holds and
-- never overwrites the past, so a punch is judged by what was in force at its `at`, and each
-- punch_id's first verdict is kept so that a resend, replay or rebuild cannot change it.
--
-- Rows of the three history tables are appended, never updated; `seq` orders them as recorded.
-- - employee_ranges: an employee's active range (`active_from <= at < active_until`). The range
--   recorded last is the employee's range (a range is dated already; an end date is a new row).
-- - licence_grants: an employee holds a licence seat (granted) or not (revoked) on
--   `valid_from <= at < valid_until`. Where rows overlap, the one recorded last holds; where
--   none covers `at`, the employee is not licensed.
-- - tenant_licences: a tenant's licence (seats) on the inclusive work dates
--   `valid_from..=valid_until` (NULL = open). Where rows overlap, the one recorded last holds;
--   where none covers a work date, or the row that holds has 0 seats, there is no licence.
-- The pre-history columns are migrated into one row each and dropped.

CREATE TABLE employee_ranges (
    seq          bigserial PRIMARY KEY,
    tenant_id    text NOT NULL,
    employee_id  text NOT NULL,
    active_from  timestamptz NOT NULL DEFAULT '-infinity',
    active_until timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL DEFAULT current_user,
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, employee_id),
    CHECK (active_until IS NULL OR active_from <= active_until)
);
CREATE INDEX employee_ranges_employee_idx ON employee_ranges (tenant_id, employee_id, seq);

CREATE TABLE licence_grants (
    seq          bigserial PRIMARY KEY,
    tenant_id    text NOT NULL,
    employee_id  text NOT NULL,
    granted      boolean NOT NULL,
    valid_from   timestamptz NOT NULL DEFAULT '-infinity',
    valid_until  timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL DEFAULT current_user,
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, employee_id),
    CHECK (valid_until IS NULL OR valid_from < valid_until)
);
CREATE INDEX licence_grants_employee_idx ON licence_grants (tenant_id, employee_id, seq);

CREATE TABLE tenant_licences (
    seq          bigserial PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id),
    seats        integer NOT NULL CHECK (seats >= 0),
    valid_from   date,
    valid_until  date,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL DEFAULT current_user,
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from <= valid_until)
);
CREATE INDEX tenant_licences_tenant_idx ON tenant_licences (tenant_id, seq);

-- Data forward: what each row said becomes the first history row. A licensed employee held
-- the seat over the whole active range (the flag had no date), so the grant starts there.
INSERT INTO employee_ranges (tenant_id, employee_id, active_from, active_until, recorded_at)
    SELECT tenant_id, employee_id, active_from,
           CASE WHEN active_until IS NOT NULL AND active_until < active_from THEN active_from
                ELSE active_until END,
           updated_at
    FROM employees ORDER BY tenant_id, employee_id;
INSERT INTO licence_grants (tenant_id, employee_id, granted, valid_from, recorded_at)
    SELECT tenant_id, employee_id, true, active_from, updated_at
    FROM employees WHERE licensed ORDER BY tenant_id, employee_id;
-- Infinite dates (never valid before / after) become a licence without seats.
INSERT INTO tenant_licences (tenant_id, seats, valid_from, valid_until, recorded_at)
    SELECT tenant_id,
           CASE WHEN licence_valid_from = 'infinity' OR licence_valid_until = '-infinity'
                     OR licence_valid_from > licence_valid_until THEN 0
                ELSE licence_seats END,
           CASE WHEN isfinite(licence_valid_from) THEN licence_valid_from END,
           CASE WHEN isfinite(licence_valid_until) THEN licence_valid_until END,
           updated_at
    FROM tenants
    WHERE licence_seats > 0 OR licence_valid_from IS NOT NULL OR licence_valid_until IS NOT NULL
    ORDER BY tenant_id;

ALTER TABLE employees DROP COLUMN active_from, DROP COLUMN active_until, DROP COLUMN licensed;
ALTER TABLE tenants DROP COLUMN licence_seats, DROP COLUMN licence_valid_from,
    DROP COLUMN licence_valid_until;

CREATE TRIGGER employee_ranges_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON employee_ranges
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER licence_grants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON licence_grants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER tenant_licences_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_licences
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();

-- The first verdict of every punch_id (licence-check), inserted before the Kafka transaction
-- that publishes it commits. A punch_id seen again (a resend, a replay, a rebuild) is
-- published with this row's verdict unchanged; only `punchctl recheck` updates a row.
-- Not master data: no version bump.
CREATE TABLE punch_verdicts (
    punch_id             uuid PRIMARY KEY,
    tenant_id            text NOT NULL,
    verdict              text NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    reason               text,
    employee_id          text,
    master_data_version  bigint NOT NULL,
    -- ms since the epoch, as in CheckedPunch.checked_at.
    checked_at           bigint NOT NULL,
    -- How often `punchctl recheck` changed it.
    rechecks             integer NOT NULL DEFAULT 0,
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((verdict = 'accepted') = (reason IS NULL))
);
CREATE INDEX punch_verdicts_rejected_idx ON punch_verdicts (tenant_id) WHERE verdict = 'rejected';
