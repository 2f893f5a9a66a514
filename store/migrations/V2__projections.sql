-- Projections of the log. Kafka is the source of truth: everything here can be cleared and
-- rebuilt by replaying punches.checked.<group> (punchctl rebuild).

-- Accepted punches, stored once per punch_id (INSERT .. ON CONFLICT DO NOTHING).
CREATE TABLE punches (
    punch_id           uuid PRIMARY KEY,
    tenant_id          text NOT NULL,
    group_id           text NOT NULL,
    device_id          text NOT NULL,
    seq                bigint NOT NULL CHECK (seq >= 0),
    card_id            text NOT NULL,
    employee_id        text NOT NULL,
    kind               text NOT NULL
                       CHECK (kind IN ('clock_in', 'clock_out', 'break_start', 'break_end')),
    at                 timestamptz NOT NULL,
    at_offset_minutes  integer NOT NULL,
    work_date          date NOT NULL,
    received_at        timestamptz NOT NULL,
    master_data_version bigint NOT NULL,
    -- Where the verdict came from, for audit.
    source_topic       text NOT NULL,
    source_partition   integer NOT NULL,
    source_offset      bigint NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, device_id, seq)
);
CREATE INDEX punches_day_idx ON punches (tenant_id, employee_id, work_date);
CREATE INDEX punches_group_idx ON punches (group_id);

-- A resend whose content differs from the stored punch of the same punch_id: kept aside for an
-- operator, never silently dropped and never allowed to change the stored punch.
CREATE TABLE punch_conflicts (
    conflict_id      bigserial PRIMARY KEY,
    punch_id         uuid NOT NULL REFERENCES punches (punch_id),
    tenant_id        text NOT NULL,
    received         jsonb NOT NULL,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);

-- Read model: one row per employee and work date (CONTRACT §4).
CREATE TABLE attendance_days (
    tenant_id         text NOT NULL,
    employee_id       text NOT NULL,
    work_date         date NOT NULL,
    group_id          text NOT NULL,
    first_in          timestamptz,
    last_out          timestamptz,
    worked_minutes    integer NOT NULL CHECK (worked_minutes >= 0),
    break_minutes     integer NOT NULL CHECK (break_minutes >= 0),
    night_minutes     integer NOT NULL CHECK (night_minutes >= 0),
    overtime_minutes  integer NOT NULL CHECK (overtime_minutes >= 0),
    punch_count       integer NOT NULL CHECK (punch_count >= 0),
    anomalies         text[] NOT NULL DEFAULT '{}',
    revision          bigint NOT NULL CHECK (revision >= 1),
    computed_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, employee_id, work_date)
);
CREATE INDEX attendance_days_group_idx ON attendance_days (group_id, tenant_id, work_date);

-- Consumer positions stored in the same transaction as the rows they produced, so Postgres
-- projections are exactly-once without trusting Kafka's own commit.
CREATE TABLE consumer_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL CHECK (partition >= 0),
    -- The offset of the next record to read (Kafka's committed-offset convention).
    next_offset     bigint NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
