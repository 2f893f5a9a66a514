-- The attendance consumer (consumers/attendance): which verdict of a punch counts, the audit
-- count of ignored double taps, and the outbox watermark of attendance.daily publishing.

-- Which verdict counts. licence-check may emit several verdicts for one punch_id (a resend is
-- checked again; `punchctl recheck` re-judges rejected punches). The latest verdict wins, where
-- "latest" is ordered by (master_data_version, checked_at, rejected after accepted): verdicts
-- of one punch can sit on different partitions (an unknown card is keyed by card, a known one by
-- employee), so offsets cannot order them, and this order makes the outcome independent of how
-- partitions interleave. A stored punch whose latest verdict is a rejection is `withdrawn`: it
-- stays (audit, conflicts refer to it) but no longer counts towards its day.
ALTER TABLE punches
    ADD COLUMN withdrawn boolean NOT NULL DEFAULT false,
    ADD COLUMN verdict_master_data_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN verdict_checked_at timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN verdict_source_partition integer,
    ADD COLUMN verdict_source_offset bigint;

-- The latest verdict of punches that were rejected and never accepted (so not in `punches`):
-- remembered so that an older accepted verdict read later cannot bring them in. A row moves
-- into `punches` (as a withdrawn punch) when an accepted verdict for it arrives.
CREATE TABLE punch_rejections (
    punch_id            uuid PRIMARY KEY,
    tenant_id           text NOT NULL,
    reason              text,
    master_data_version bigint NOT NULL,
    checked_at          timestamptz NOT NULL,
    source_topic        text NOT NULL,
    source_partition    integer NOT NULL,
    source_offset       bigint NOT NULL
);

-- Double taps ignored on the day (not in punch_count): stored punches of a day =
-- punch_count + double_taps + its withdrawn punches, which `punchctl audit` can check.
ALTER TABLE attendance_days
    ADD COLUMN double_taps integer NOT NULL DEFAULT 0 CHECK (double_taps >= 0),
    -- The consumer batch (attendance_batch_seq) that last changed the day: the outbox of the
    -- compacted attendance.daily topic. Days of batches after the group's publish mark are
    -- published again at start-up, so a crash between commit and publish loses nothing.
    ADD COLUMN batch_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX attendance_days_outbox_idx ON attendance_days (group_id, batch_seq);

CREATE SEQUENCE attendance_batch_seq;

-- Per consumer group: every day changed by a batch up to this one is on attendance.daily.
CREATE TABLE attendance_publish_marks (
    consumer_group      text PRIMARY KEY,
    published_batch_seq bigint NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
