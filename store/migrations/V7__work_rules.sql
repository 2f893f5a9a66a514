-- Tenants' work rules (attendance v2), effective-dated and append-only, and the requests that
-- make the attendance consumer recompute after a rules change.

-- One row per recorded rules version. `version` numbers a tenant's versions 1, 2, 3... in the
-- order they were recorded. A version holds from 00:00 of `effective_from` (on its own
-- time_zone's wall clock) until the next effective_from. Recording rules for an
-- effective_from that already has a version supersedes it: per (tenant_id, effective_from) the
-- row with the highest version is the one in force; the older rows stay as history.
-- `rules` holds the complete resolved rule set (every rule, by its rules-file name, defaults
-- written out; effective_from is the column, not a key), so a row never depends on defaults
-- that may change later.
CREATE TABLE tenant_rules (
    tenant_id      text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    version        bigint NOT NULL CHECK (version >= 1),
    effective_from date NOT NULL,
    rules          jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text NOT NULL DEFAULT current_user,
    reason         text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, version)
);
CREATE INDEX tenant_rules_in_force_idx ON tenant_rules (tenant_id, effective_from, version DESC);

-- Rows are history: a change is a new version, never an update. They go only with their
-- tenant (ON DELETE CASCADE, as benchmark clean-up deletes its tenant).
CREATE FUNCTION refuse_tenant_rules_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenant_rules is append-only: record a new version (punchctl rules set) instead of updating version % of tenant %',
        OLD.version, OLD.tenant_id;
END;
$$;
CREATE TRIGGER tenant_rules_append_only BEFORE UPDATE ON tenant_rules
    FOR EACH ROW EXECUTE FUNCTION refuse_tenant_rules_update();

-- The default rules with a tenant's own calendar: what every tenant starts with. Must match
-- RuleVersion::defaults in rules/src/v2/rulebook.rs (a store test compares them).
CREATE FUNCTION default_work_rules(time_zone text, day_change time) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'time_zone', time_zone,
        'day_change', CASE WHEN extract(second FROM day_change) = 0
                           THEN to_char(day_change, 'HH24:MI')
                           ELSE to_char(day_change, 'HH24:MI:SS') END,
        'max_shift_minutes', 1440,
        'double_tap_seconds', 60,
        'night_start', '22:00',
        'night_end', '05:00',
        'daily_limit_minutes', 480,
        'weekly_limit_minutes', 2400,
        'week_start', 'sunday',
        'legal_holiday', NULL,
        'scheduled_daily_minutes', 480,
        'closing_day', NULL,
        'agreement_start_month', 4,
        'agreement_monthly_limit_minutes', 2700,
        'agreement_yearly_limit_minutes', 21600,
        'monthly_rounding', 'none'
    )
$$;

-- Every existing tenant starts with version 1: the defaults on its own calendar, from a date
-- before any punch (a date before the first version takes the first version anyway).
INSERT INTO tenant_rules (tenant_id, version, effective_from, rules, reason)
SELECT tenant_id, 1, DATE '2000-01-01', default_work_rules(time_zone, day_change_time),
       'defaults on the tenant''s calendar (migration V7)'
FROM tenants;

-- So does every tenant added later, whichever way it is added (punchctl tenant add, tests,
-- tools): no caller can forget it.
CREATE FUNCTION add_default_work_rules() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_rules (tenant_id, version, effective_from, rules, reason)
    VALUES (NEW.tenant_id, 1, DATE '2000-01-01',
            default_work_rules(NEW.time_zone, NEW.day_change_time),
            'defaults on the tenant''s calendar (tenant added)');
    RETURN NULL;
END;
$$;
CREATE TRIGGER tenants_default_work_rules AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION add_default_work_rules();

-- A rules version's recompute, written in the same transaction as the version (and announced
-- with pg_notify('dakoku_attendance_recompute', tenant_id)). The attendance consumer recomputes
-- the tenant's days from from_date (widened to the shifts and weeks it touches, as for a late
-- punch) and months from there, then deletes the request.
CREATE TABLE attendance_recompute_requests (
    request_id    bigserial PRIMARY KEY,
    tenant_id     text NOT NULL,
    -- The first work date whose figures the new version can change.
    from_date     date NOT NULL,
    -- The version recorded (tenant_rules.version).
    rules_version bigint NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    requested_by  text NOT NULL DEFAULT current_user,
    FOREIGN KEY (tenant_id, rules_version) REFERENCES tenant_rules (tenant_id, version)
        ON DELETE CASCADE
);
CREATE INDEX attendance_recompute_requests_tenant_idx
    ON attendance_recompute_requests (tenant_id, request_id);
