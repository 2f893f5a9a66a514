-- Master data: who may send punches, where they are routed, and how they are judged.
-- Read by the acceptor (routing, revocation, pauses) and licence-check (licences, employees)
-- through in-memory snapshots; every change bumps master_data_version and NOTIFYs them.

CREATE TABLE tenant_groups (
    group_id    text PRIMARY KEY CHECK (group_id ~ '^[a-z0-9-]{1,32}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    tenant_id            text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                 text NOT NULL,
    group_id             text NOT NULL REFERENCES tenant_groups (group_id),
    -- IANA zone; work dates are local wall-clock dates shifted by day_change_time.
    time_zone            text NOT NULL DEFAULT 'Asia/Tokyo',
    day_change_time      time NOT NULL DEFAULT '05:00',
    licence_seats        integer NOT NULL DEFAULT 0 CHECK (licence_seats >= 0),
    -- Inclusive work-date range; NULL bounds mean open-ended, no row-level licence means none.
    licence_valid_from   date,
    licence_valid_until  date,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (licence_valid_from IS NULL OR licence_valid_until IS NULL
           OR licence_valid_from <= licence_valid_until)
);
CREATE INDEX tenants_group_idx ON tenants (group_id);

CREATE TABLE employees (
    tenant_id     text NOT NULL REFERENCES tenants (tenant_id),
    employee_id   text NOT NULL CHECK (employee_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    card_id       text NOT NULL CHECK (card_id ~ '^[0-9A-Za-z_-]{1,64}$'),
    name          text NOT NULL DEFAULT '',
    -- The employee counts as active for punches with active_from <= at < active_until.
    active_from   timestamptz NOT NULL DEFAULT '-infinity',
    active_until  timestamptz,
    licensed      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, employee_id),
    UNIQUE (tenant_id, card_id)
);

CREATE TABLE devices (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    device_id   text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    description text NOT NULL DEFAULT '',
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id)
);

-- Operator intake pauses. target is a group id, a tenant id, or '<tenant>/<device>'.
CREATE TABLE intake_pauses (
    scope               text NOT NULL CHECK (scope IN ('group', 'tenant', 'device')),
    target              text NOT NULL,
    retry_after_seconds integer NOT NULL DEFAULT 300 CHECK (retry_after_seconds > 0),
    reason              text NOT NULL DEFAULT '',
    paused_by           text NOT NULL DEFAULT current_user,
    paused_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, target)
);

-- One monotonically increasing version for all master data: snapshots record the version
-- they were built from, so every licence verdict can say which master data it used.
CREATE TABLE master_data_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO master_data_version (version) VALUES (1);

CREATE FUNCTION bump_master_data_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE master_data_version SET version = version + 1, changed_at = now()
        RETURNING version INTO v;
    -- Snapshot holders LISTEN on this channel; the payload is the new version.
    PERFORM pg_notify('dakoku_master_data', v::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tenant_groups_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_groups
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER employees_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON employees
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER devices_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
CREATE TRIGGER intake_pauses_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake_pauses
    FOR EACH STATEMENT EXECUTE FUNCTION bump_master_data_version();
