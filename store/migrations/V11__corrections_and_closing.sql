-- Administrators' corrections (§4.6) and monthly closing with adjustments (§4.7).

-- Corrections as the attendance consumer stored them from punches.corrections.<group>, once
-- per correction_id (INSERT .. ON CONFLICT DO NOTHING: the first stands, as for punches). The
-- log is the source of truth; this table is its projection, rebuilt by `punchctl rebuild`.
-- Never updated: a mistaken correction is voided by another one.
CREATE TABLE corrections (
    tenant_id        text NOT NULL,
    correction_id    uuid NOT NULL,
    employee_id      text NOT NULL,
    group_id         text NOT NULL,
    action           text NOT NULL CHECK (action IN ('add', 'void')),
    -- add: the punch added (it joins pairing with punch_id = correction_id, seq 0).
    kind             text CHECK (kind IN ('clock_in', 'clock_out', 'break_start', 'break_end')),
    at               timestamptz,
    -- void: the raw punch_id or the add's correction_id it voids.
    target_id        uuid,
    actor            text NOT NULL CHECK (actor <> ''),
    reason           text NOT NULL CHECK (reason <> ''),
    created_at       timestamptz NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, correction_id),
    CHECK (
        (action = 'add' AND kind IS NOT NULL AND at IS NOT NULL AND target_id IS NULL)
        OR (action = 'void' AND kind IS NULL AND at IS NULL AND target_id IS NOT NULL)
    )
);
-- Recompute loads an employee's adds by instant, like their punches.
CREATE INDEX corrections_employee_at_idx ON corrections (tenant_id, employee_id, at);
CREATE INDEX corrections_target_idx ON corrections (tenant_id, target_id)
    WHERE target_id IS NOT NULL;

-- Which corrections touched the day (adds assigned to it, voids of its punches), sorted.
ALTER TABLE attendance_days
    ADD COLUMN correction_ids text[] NOT NULL DEFAULT '{}';

-- Every close and reopen, as history (who, when, why). Reopening needs a reason.
CREATE TABLE month_closings (
    closing_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    month      text NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    action     text NOT NULL CHECK (action IN ('close', 'reopen')),
    actor      text NOT NULL CHECK (actor <> ''),
    reason     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    -- Set by the attendance consumer once it has published what the event changes (a close:
    -- the paid records; a reopen: the months as they are now), in its own batch order.
    served_at  timestamptz,
    CHECK (action = 'close' OR reason <> '')
);
CREATE INDEX month_closings_tenant_idx ON month_closings (tenant_id, month, closing_id);
CREATE INDEX month_closings_unserved_idx ON month_closings (closing_id) WHERE served_at IS NULL;

-- The months closed now (the latest month_closings row of the month is a close).
CREATE TABLE closed_months (
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    month      text NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    closing_id bigint NOT NULL REFERENCES month_closings (closing_id),
    PRIMARY KEY (tenant_id, month)
);

-- Each employee's month as it was paid: attendance_months at the moment of closing, frozen.
-- The published monthly record of a closed month stays this; later changes are adjustments.
CREATE TABLE paid_months (
    tenant_id                text NOT NULL,
    employee_id              text NOT NULL,
    month                    text NOT NULL,
    group_id                 text NOT NULL,
    first_day                date NOT NULL,
    last_day                 date NOT NULL,
    days_worked              integer NOT NULL,
    anomaly_days             integer NOT NULL,
    worked_seconds           bigint NOT NULL,
    break_seconds            bigint NOT NULL,
    night_seconds            bigint NOT NULL,
    holiday_seconds          bigint NOT NULL,
    within_statutory_seconds bigint NOT NULL,
    overtime_seconds         bigint NOT NULL,
    overtime_over60_seconds  bigint NOT NULL,
    worked_minutes           bigint NOT NULL,
    overtime_minutes         bigint NOT NULL,
    overtime_over60_minutes  bigint NOT NULL,
    night_minutes            bigint NOT NULL,
    holiday_minutes          bigint NOT NULL,
    rules_version            bigint NOT NULL,
    revision                 bigint NOT NULL,
    computed_at              timestamptz NOT NULL,
    closing_id               bigint NOT NULL REFERENCES month_closings (closing_id),
    PRIMARY KEY (tenant_id, employee_id, month),
    FOREIGN KEY (tenant_id, month) REFERENCES closed_months (tenant_id, month) ON DELETE CASCADE
);

-- What changed in a closed month after it was paid: each figure's difference between the
-- month now and the month as paid plus the earlier adjustments, and why. Published on
-- payroll.monthly.<group> as `adjustment` records and exported with `export_month`'s rows.
-- A reopen supersedes the month's adjustments (the month record is republished whole).
CREATE TABLE attendance_adjustments (
    tenant_id                text NOT NULL,
    employee_id              text NOT NULL,
    -- The closed month whose figures changed.
    month                    text NOT NULL,
    -- 1, 2, 3... per employee and month.
    seq                      bigint NOT NULL CHECK (seq >= 1),
    group_id                 text NOT NULL,
    -- The first month after `month` that was not closed when the adjustment was made.
    export_month             text NOT NULL CHECK (export_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    -- 'punch:<id>', 'correction:<id>', 'rules:<version>', 'rebuild', 'reopen'.
    causes                   text[] NOT NULL,
    first_day                date NOT NULL,
    last_day                 date NOT NULL,
    days_worked              integer NOT NULL,
    anomaly_days             integer NOT NULL,
    worked_seconds           bigint NOT NULL,
    break_seconds            bigint NOT NULL,
    night_seconds            bigint NOT NULL,
    holiday_seconds          bigint NOT NULL,
    within_statutory_seconds bigint NOT NULL,
    overtime_seconds         bigint NOT NULL,
    overtime_over60_seconds  bigint NOT NULL,
    worked_minutes           bigint NOT NULL,
    overtime_minutes         bigint NOT NULL,
    overtime_over60_minutes  bigint NOT NULL,
    night_minutes            bigint NOT NULL,
    holiday_minutes          bigint NOT NULL,
    rules_version            bigint NOT NULL,
    computed_at              timestamptz NOT NULL,
    -- Outbox position, as attendance_months.batch_seq.
    batch_seq                bigint NOT NULL,
    superseded_at            timestamptz,
    PRIMARY KEY (tenant_id, employee_id, month, seq)
);
CREATE INDEX attendance_adjustments_export_idx ON attendance_adjustments (tenant_id, export_month);
CREATE INDEX attendance_adjustments_outbox_idx ON attendance_adjustments (group_id, batch_seq);
