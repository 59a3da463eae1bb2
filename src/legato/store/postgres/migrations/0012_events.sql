-- Events: what happened, in the order the store recorded it (`legato.events`).
-- seq is allocated at insert, txid is the writing transaction. Concurrent writers
-- commit out of seq order, so an in-order reader reads only events of transactions
-- older than every one still open (pg_snapshot_xmin) in (txid, seq) order: nothing
-- it has passed can appear later.
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id text COLLATE "C" NOT NULL UNIQUE,
    event text COLLATE "C" NOT NULL,
    occurred timestamptz NOT NULL,
    received timestamptz NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    resource jsonb NOT NULL,
    related jsonb NOT NULL,
    payload jsonb NOT NULL,
    follows text COLLATE "C"
);
CREATE INDEX events_order ON events (txid, seq);
CREATE INDEX events_event ON events (event, seq);
CREATE INDEX events_received ON events (received);

-- Every resource an event names (its own with role '', and each related one), so
-- "events about X" is an index lookup, not a scan.
CREATE TABLE event_resources (
    resource_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    role text COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_id, seq, role)
);
CREATE INDEX event_resources_seq ON event_resources (seq);

CREATE FUNCTION legato_index_event_resources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_resources (resource_id, seq, role)
    SELECT NEW.resource_id, NEW.seq, ''
    UNION ALL
    SELECT r ->> 'legato.resource.id', NEW.seq, coalesce(r ->> 'legato.resource.role', '')
    FROM jsonb_array_elements(NEW.related) AS r
    WHERE r ->> 'legato.resource.id' IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER events_index_resources AFTER INSERT ON events
FOR EACH ROW EXECUTE FUNCTION legato_index_event_resources();

-- A flow run's state change writes its event in the same transaction as the change
-- (this trigger), whichever store operation made it: no state change's event can be
-- lost, and none is written for a change that rolled back.
CREATE FUNCTION legato_flow_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state_name text := upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2);
    from_state text := NULL;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
            RETURN NULL;
        END IF;
        from_state := OLD.state;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.flow-run.' || state_name,
        clock_timestamp(), clock_timestamp(),
        'legato.flow-run.' || NEW.id,
        jsonb_build_object(
            'legato.resource.id', 'legato.flow-run.' || NEW.id,
            'legato.resource.name', NEW.name,
            'legato.state-name', state_name),
        (SELECT coalesce(jsonb_agg(label), '[]'::jsonb) FROM (
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                                      'legato.resource.role', 'flow',
                                      'legato.resource.name', NEW.flow_name) AS label
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.deployment.' || NEW.deployment,
                                      'legato.resource.role', 'deployment',
                                      'legato.resource.name', NEW.deployment)
            WHERE NEW.deployment IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                                      'legato.resource.role', 'work-queue',
                                      'legato.resource.name', NEW.work_queue)
            WHERE NEW.work_queue IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow-run.' || NEW.parent_run_id,
                                      'legato.resource.role', 'parent-flow-run')
            WHERE NEW.parent_run_id IS NOT NULL
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.tag.' || t,
                                      'legato.resource.role', 'tag')
            FROM jsonb_array_elements_text(coalesce(NEW.tags, '[]'::jsonb)) AS t
        ) AS labels),
        jsonb_build_object(
            'from', from_state, 'to', NEW.state, 'message', NEW.state_message,
            'attempt', NEW.attempts, 'error_type', NEW.error ->> 'type',
            'error_message', NEW.error ->> 'message')
    );
    RETURN NULL;
END $$;

CREATE TRIGGER flow_run_created_event AFTER INSERT ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_event();
CREATE TRIGGER flow_run_state_event AFTER UPDATE OF state ON flow_runs
FOR EACH ROW EXECUTE FUNCTION legato_flow_run_event();

-- Task runs: only failures and crashes write events. A completed task writes none,
-- so the sequential task path pays nothing for events (see docs/architecture.md).
CREATE FUNCTION legato_task_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state_name text := upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2);
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.state IS NOT DISTINCT FROM OLD.state THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.task-run.' || state_name,
        clock_timestamp(), clock_timestamp(),
        'legato.task-run.' || NEW.id,
        jsonb_build_object(
            'legato.resource.id', 'legato.task-run.' || NEW.id,
            'legato.resource.name', NEW.name,
            'legato.state-name', state_name),
        (SELECT coalesce(jsonb_agg(label), '[]'::jsonb) FROM (
            SELECT jsonb_build_object('legato.resource.id', 'legato.flow-run.' || NEW.flow_run_id,
                                      'legato.resource.role', 'flow-run') AS label
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.task.' || NEW.task_name,
                                      'legato.resource.role', 'task',
                                      'legato.resource.name', NEW.task_name)
            UNION ALL
            SELECT jsonb_build_object('legato.resource.id', 'legato.tag.' || t,
                                      'legato.resource.role', 'tag')
            FROM jsonb_array_elements_text(coalesce(NEW.tags, '[]'::jsonb)) AS t
        ) AS labels),
        jsonb_build_object(
            'to', NEW.state, 'attempt', NEW.attempts,
            'error_type', NEW.error ->> 'type', 'error_message', NEW.error ->> 'message')
    );
    RETURN NULL;
END $$;

CREATE TRIGGER task_run_failed_event AFTER INSERT OR UPDATE OF state ON task_runs
FOR EACH ROW WHEN (NEW.state IN ('failed', 'crashed'))
EXECUTE FUNCTION legato_task_run_event();
