-- Replays done by `punchctl replay`: the records [from_offset, to_offset) of a partition were
-- handed to the consumer group once more. licence-check judges each raw record once per pass,
-- so a replayed record legitimately has one more verdict per replay that covered it;
-- `punchctl audit` reads this table so that a replay done on purpose is not reported as a
-- doubled verdict. Also the operator's record of what was replayed, when and by whom.
CREATE TABLE consumer_replays (
    replay_id       bigserial PRIMARY KEY,
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL CHECK (partition >= 0),
    -- The new position (first record read again).
    from_offset     bigint NOT NULL CHECK (from_offset >= 0),
    -- The group's position before the replay (exclusive): records below it had been read.
    to_offset       bigint NOT NULL,
    replayed_at     timestamptz NOT NULL DEFAULT now(),
    replayed_by     text NOT NULL DEFAULT current_user,
    CHECK (from_offset <= to_offset)
);
CREATE INDEX consumer_replays_lookup_idx ON consumer_replays (consumer_group, topic, partition);
