-- Attendance rules v2 (payroll-grade figures): exact seconds on the day records, which rules
-- version computed them, corrected days, and the monthly records of payroll months.

-- Day figures in exact seconds. The *_minutes columns stay, as floor(seconds / 60), for
-- display and for readers of the v1 record. Rows written by v1 keep 0 here and
-- rules_version 0 until the day is recomputed (a rebuild recomputes every day).
ALTER TABLE attendance_days
    ADD COLUMN worked_seconds           bigint NOT NULL DEFAULT 0 CHECK (worked_seconds >= 0),
    ADD COLUMN break_seconds            bigint NOT NULL DEFAULT 0 CHECK (break_seconds >= 0),
    ADD COLUMN night_seconds            bigint NOT NULL DEFAULT 0 CHECK (night_seconds >= 0),
    ADD COLUMN holiday_seconds          bigint NOT NULL DEFAULT 0 CHECK (holiday_seconds >= 0),
    ADD COLUMN overtime_daily_seconds   bigint NOT NULL DEFAULT 0 CHECK (overtime_daily_seconds >= 0),
    ADD COLUMN overtime_weekly_seconds  bigint NOT NULL DEFAULT 0 CHECK (overtime_weekly_seconds >= 0),
    ADD COLUMN within_statutory_seconds bigint NOT NULL DEFAULT 0 CHECK (within_statutory_seconds >= 0),
    -- A correction added a punch to the day or voided one of its own punches (§4.6).
    ADD COLUMN corrected                boolean NOT NULL DEFAULT false,
    -- The tenant's rules version (tenant_rules.version) in force on the work date; 0: v1.
    ADD COLUMN rules_version            bigint NOT NULL DEFAULT 0;

-- Pairing runs over an employee's punches in time order, across work dates: the consumer loads
-- a window of them by instant, and the audit reads each employee's punches in that order. No
-- query selects punches by their own work date any more.
CREATE INDEX punches_employee_at_idx ON punches (tenant_id, employee_id, at);
DROP INDEX punches_day_idx;

-- One employee's figures for one payroll month (the month of the tenant's closing_day that the
-- work date falls in), for payroll: published on payroll.monthly.<group> and exported by
-- `punchctl payroll export`. Figures are the sums of the month's days in seconds; the
-- *_minutes columns are the payable minutes (floor, then the month's monthly_rounding).
CREATE TABLE attendance_months (
    tenant_id                text NOT NULL,
    employee_id              text NOT NULL,
    -- Payroll month, 'YYYY-MM': the month a closing period ends in.
    month                    text NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    group_id                 text NOT NULL,
    -- The work dates the month covers (inclusive).
    first_day                date NOT NULL,
    last_day                 date NOT NULL,
    days_worked              integer NOT NULL CHECK (days_worked >= 0),
    anomaly_days             integer NOT NULL CHECK (anomaly_days >= 0),
    worked_seconds           bigint NOT NULL CHECK (worked_seconds >= 0),
    break_seconds            bigint NOT NULL CHECK (break_seconds >= 0),
    night_seconds            bigint NOT NULL CHECK (night_seconds >= 0),
    holiday_seconds          bigint NOT NULL CHECK (holiday_seconds >= 0),
    within_statutory_seconds bigint NOT NULL CHECK (within_statutory_seconds >= 0),
    overtime_seconds         bigint NOT NULL CHECK (overtime_seconds >= 0),
    overtime_over60_seconds  bigint NOT NULL CHECK (overtime_over60_seconds >= 0),
    worked_minutes           bigint NOT NULL CHECK (worked_minutes >= 0),
    overtime_minutes         bigint NOT NULL CHECK (overtime_minutes >= 0),
    overtime_over60_minutes  bigint NOT NULL CHECK (overtime_over60_minutes >= 0),
    night_minutes            bigint NOT NULL CHECK (night_minutes >= 0),
    holiday_minutes          bigint NOT NULL CHECK (holiday_minutes >= 0),
    -- The rules version in force on the month's last day (its monthly_rounding applied).
    rules_version            bigint NOT NULL DEFAULT 0,
    revision                 bigint NOT NULL CHECK (revision >= 1),
    computed_at              timestamptz NOT NULL,
    -- The consumer batch that last changed the month: the outbox of payroll.monthly.<group>,
    -- published like the days (attendance_publish_marks).
    batch_seq                bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, employee_id, month),
    CHECK (first_day <= last_day)
);
CREATE INDEX attendance_months_tenant_idx ON attendance_months (tenant_id, month);
CREATE INDEX attendance_months_outbox_idx ON attendance_months (group_id, batch_seq);
