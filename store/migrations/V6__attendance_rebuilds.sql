-- Rebuilds of the attendance projection (`punchctl rebuild`) that have cleared their scope but
-- not yet recomputed its days. A rebuild clears the scope's punches and resets the group's
-- offsets in one transaction, replays the log without recomputing the scope's days, and
-- recomputes them all at the end. Interrupted in between (killed, Ctrl-C, Postgres gone), the
-- punches come back on any later replay but the deferred days keep stale figures, silently:
-- only the same rebuild run again repairs them. So the rebuild writes its row here in the
-- transaction of the clear and deletes it once the recompute has committed; while a row
-- exists, the attendance service refuses to consume the group and names the command to run,
-- and a rebuild of a scope that does not cover the unfinished one is refused.
CREATE TABLE attendance_rebuilds (
    -- `attendance.<group>`: one unfinished rebuild per group at most.
    consumer_group  text PRIMARY KEY,
    -- The tenant rebuilt; NULL: the whole group.
    tenant_id       text NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    started_by      text NOT NULL DEFAULT current_user
);
