-- Events, second part.
-- 1. A failed or crashed task run's event is written by the store in the same
--    transaction as the task run (queries.sql, record_task_run_event) instead of by
--    a trigger on the journal: a trigger with a false WHEN still cost every completed
--    task about 3 µs on SQLite.
-- 2. Flow-run state events wake the automation evaluator (the events_stored
--    notification, bumped in the same transaction).
DROP TRIGGER task_run_failed_event;
DROP TRIGGER flow_run_created_event;
DROP TRIGGER flow_run_state_event;

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
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
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
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

-- Events of deployments and workers, written by triggers in the same transaction as
-- the change (as flow runs' are): created, updated, paused, resumed and deleted
-- deployments; started and stopped workers. (A worker that stops without saying so
-- is reported `legato.worker.offline` by the leader's sweep.)
CREATE TRIGGER deployment_created_event AFTER INSERT ON deployments
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.created',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name),
            json_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                        'legato.resource.role', 'work-queue',
                        'legato.resource.name', NEW.work_queue)),
        json_object('entrypoint', NEW.entrypoint, 'paused', json(CASE WHEN NEW.paused
                    THEN 'true' ELSE 'false' END))
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_updated_event
AFTER UPDATE OF flow_name, entrypoint, work_queue, priority, concurrency_limit,
    collision_strategy, catchup, description, tags, parameters, schedules, timeout_seconds,
    retries ON deployments
WHEN NEW.flow_name IS NOT OLD.flow_name OR NEW.entrypoint IS NOT OLD.entrypoint
    OR NEW.work_queue IS NOT OLD.work_queue OR NEW.priority IS NOT OLD.priority
    OR NEW.concurrency_limit IS NOT OLD.concurrency_limit
    OR NEW.collision_strategy IS NOT OLD.collision_strategy OR NEW.catchup IS NOT OLD.catchup
    OR NEW.description IS NOT OLD.description OR NEW.tags IS NOT OLD.tags
    OR NEW.parameters IS NOT OLD.parameters OR NEW.schedules IS NOT OLD.schedules
    OR NEW.timeout_seconds IS NOT OLD.timeout_seconds OR NEW.retries IS NOT OLD.retries
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.updated',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name),
            json_object('legato.resource.id', 'legato.work-queue.' || NEW.work_queue,
                        'legato.resource.role', 'work-queue',
                        'legato.resource.name', NEW.work_queue)),
        json_object('entrypoint', NEW.entrypoint)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_paused_event AFTER UPDATE OF paused ON deployments
WHEN NEW.paused IS NOT OLD.paused
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))),
        CASE WHEN NEW.paused THEN 'legato.deployment.paused' ELSE 'legato.deployment.resumed' END,
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || NEW.name,
        json_object('legato.resource.id', 'legato.deployment.' || NEW.name,
                    'legato.resource.name', NEW.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || NEW.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', NEW.flow_name)),
        json_object()
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER deployment_deleted_event AFTER DELETE ON deployments
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.deployment.deleted',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.deployment.' || OLD.name,
        json_object('legato.resource.id', 'legato.deployment.' || OLD.name,
                    'legato.resource.name', OLD.name),
        json_array(
            json_object('legato.resource.id', 'legato.flow.' || OLD.flow_name,
                        'legato.resource.role', 'flow', 'legato.resource.name', OLD.flow_name)),
        json_object()
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER worker_started_event AFTER INSERT ON workers
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.worker.started',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.worker.' || NEW.id,
        json_object('legato.resource.id', 'legato.worker.' || NEW.id,
                    'legato.resource.name', NEW.name),
        (SELECT json_group_array(json_object(
                    'legato.resource.id', 'legato.work-queue.' || q.value,
                    'legato.resource.role', 'work-queue', 'legato.resource.name', q.value))
         FROM json_each(NEW.queues) AS q),
        json_object('host', NEW.host, 'pid', NEW.pid, 'concurrency', NEW.concurrency)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;

CREATE TRIGGER worker_stopped_event AFTER UPDATE OF stopped_at ON workers
WHEN NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL
BEGIN
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        lower(hex(randomblob(16))), 'legato.worker.stopped',
        (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0,
        'legato.worker.' || NEW.id,
        json_object('legato.resource.id', 'legato.worker.' || NEW.id,
                    'legato.resource.name', NEW.name),
        '[]',
        json_object('host', NEW.host, 'pid', NEW.pid)
    );
    INSERT INTO notifications (channel, version, payload) VALUES ('legato_events_stored', 1, '')
    ON CONFLICT (channel) DO UPDATE SET version = notifications.version + 1, payload = '';
END;
