-- Events: what happened, in the order the store recorded it (`legato.events`).
-- seq is that order. SQLite has one writer at a time, so seq order is commit order
-- and a reader that remembers the last seq it read never misses an event.
-- resource is a JSON label object, related a JSON list of them; payload is JSON.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    occurred REAL NOT NULL,
    received REAL NOT NULL,
    resource_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    related TEXT NOT NULL,
    payload TEXT NOT NULL,
    follows TEXT
);
CREATE INDEX events_event ON events (event, seq);
CREATE INDEX events_received ON events (received);

-- Every resource an event names (its own with role '', and each related one), so
-- "events about X" is an index lookup, not a scan.
CREATE TABLE event_resources (
    resource_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (resource_id, seq, role)
) WITHOUT ROWID;
CREATE INDEX event_resources_seq ON event_resources (seq);

CREATE TRIGGER events_index_resources AFTER INSERT ON events
BEGIN
    INSERT OR IGNORE INTO event_resources (resource_id, seq, role)
    SELECT NEW.resource_id, NEW.seq, ''
    UNION ALL
    SELECT json_extract(value, '$."legato.resource.id"'), NEW.seq,
           coalesce(json_extract(value, '$."legato.resource.role"'), '')
    FROM json_each(NEW.related)
    WHERE json_extract(value, '$."legato.resource.id"') IS NOT NULL;
END;

-- The event of a flow run's current state: its name, resource and related
-- resources (flow, deployment, work queue, parent run, tags).
CREATE VIEW flow_run_event_source AS
SELECT
    fr.id AS run_id,
    'legato.flow-run.' || upper(substr(fr.state, 1, 1)) || substr(fr.state, 2) AS event,
    'legato.flow-run.' || fr.id AS resource_id,
    json_object(
        'legato.resource.id', 'legato.flow-run.' || fr.id,
        'legato.resource.name', fr.name,
        'legato.state-name', upper(substr(fr.state, 1, 1)) || substr(fr.state, 2)
    ) AS resource,
    (SELECT json_group_array(json(r.label)) FROM (
        SELECT json_object('legato.resource.id', 'legato.flow.' || fr.flow_name,
                           'legato.resource.role', 'flow',
                           'legato.resource.name', fr.flow_name) AS label
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.deployment.' || fr.deployment,
                           'legato.resource.role', 'deployment',
                           'legato.resource.name', fr.deployment)
        WHERE fr.deployment IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.work-queue.' || fr.work_queue,
                           'legato.resource.role', 'work-queue',
                           'legato.resource.name', fr.work_queue)
        WHERE fr.work_queue IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.flow-run.' || fr.parent_run_id,
                           'legato.resource.role', 'parent-flow-run')
        WHERE fr.parent_run_id IS NOT NULL
        UNION ALL
        SELECT json_object('legato.resource.id', 'legato.tag.' || t.value,
                           'legato.resource.role', 'tag')
        FROM json_each(coalesce(fr.tags, '[]')) AS t
    ) AS r) AS related,
    fr.state AS state,
    fr.state_message AS message,
    fr.attempts AS attempts,
    json_extract(fr.error, '$.type') AS error_type,
    json_extract(fr.error, '$.message') AS error_message
FROM flow_runs AS fr;

-- A flow run's state change writes its event in the same transaction as the change
-- (these triggers), whichever store operation made it: no state change's event can be
-- lost, and none is written for a change that rolled back.
CREATE TRIGGER flow_run_created_event AFTER INSERT ON flow_runs
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    SELECT lower(hex(randomblob(16))), s.event,
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
           s.resource_id, s.resource, s.related,
           json_object('from', NULL, 'to', s.state, 'message', s.message,
                       'attempt', s.attempts, 'error_type', s.error_type,
                       'error_message', s.error_message)
    FROM flow_run_event_source AS s WHERE s.run_id = NEW.id;
END;

CREATE TRIGGER flow_run_state_event AFTER UPDATE OF state ON flow_runs
WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    SELECT lower(hex(randomblob(16))), s.event,
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
           s.resource_id, s.resource, s.related,
           json_object('from', OLD.state, 'to', s.state, 'message', s.message,
                       'attempt', s.attempts, 'error_type', s.error_type,
                       'error_message', s.error_message)
    FROM flow_run_event_source AS s WHERE s.run_id = NEW.id;
END;

-- Task runs: only failures and crashes write events. A completed task writes none,
-- so the sequential task path pays nothing for events (see docs/architecture.md).
CREATE TRIGGER task_run_failed_event AFTER INSERT ON task_run_journal
WHEN NEW.state IN ('failed', 'crashed')
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    SELECT lower(hex(randomblob(16))),
           'legato.task-run.' || upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2),
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
           'legato.task-run.' || NEW.id,
           json_object('legato.resource.id', 'legato.task-run.' || NEW.id,
                       'legato.resource.name', NEW.name,
                       'legato.state-name',
                       upper(substr(NEW.state, 1, 1)) || substr(NEW.state, 2)),
           (SELECT json_group_array(json(r.label)) FROM (
               SELECT json_object('legato.resource.id', 'legato.flow-run.' || NEW.flow_run_id,
                                  'legato.resource.role', 'flow-run') AS label
               UNION ALL
               SELECT json_object('legato.resource.id', 'legato.task.' || NEW.task_name,
                                  'legato.resource.role', 'task',
                                  'legato.resource.name', NEW.task_name)
               UNION ALL
               SELECT json_object('legato.resource.id', 'legato.tag.' || t.value,
                                  'legato.resource.role', 'tag')
               FROM json_each(coalesce(NEW.tags, '[]')) AS t
           ) AS r),
           json_object('to', NEW.state, 'attempt', NEW.attempts,
                       'error_type', json_extract(NEW.error, '$.type'),
                       'error_message', json_extract(NEW.error, '$.message'));
END;
