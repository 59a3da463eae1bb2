-- Events, second part: state events wake the automation evaluator (a NOTIFY on
-- legato_events_stored in the same transaction), and deployments and workers write
-- events of their own.
CREATE OR REPLACE FUNCTION legato_flow_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
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
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION legato_task_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
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
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

-- Events of deployments and workers, written by triggers in the same transaction as
-- the change (as flow runs' are): created, updated, paused, resumed and deleted
-- deployments; started and stopped workers. (A worker that stops without saying so
-- is reported `legato.worker.offline` by the leader's sweep.)
CREATE FUNCTION legato_deployment_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_now deployments := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    name_of text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        name_of := 'created';
    ELSIF TG_OP = 'DELETE' THEN
        name_of := 'deleted';
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused THEN
        name_of := CASE WHEN NEW.paused THEN 'paused' ELSE 'resumed' END;
    ELSIF (NEW.flow_name, NEW.entrypoint, NEW.work_queue, NEW.priority, NEW.concurrency_limit,
           NEW.collision_strategy, NEW.catchup, NEW.description, NEW.timeout_seconds,
           NEW.retries, NEW.tags, NEW.schedules, NEW.parameters::text)
          IS DISTINCT FROM
          (OLD.flow_name, OLD.entrypoint, OLD.work_queue, OLD.priority, OLD.concurrency_limit,
           OLD.collision_strategy, OLD.catchup, OLD.description, OLD.timeout_seconds,
           OLD.retries, OLD.tags, OLD.schedules, OLD.parameters::text) THEN
        name_of := 'updated';
    ELSE
        RETURN NULL;  -- only its schedule's horizon moved
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        'legato.deployment.' || name_of,
        clock_timestamp(), clock_timestamp(),
        'legato.deployment.' || row_now.name,
        jsonb_build_object('legato.resource.id', 'legato.deployment.' || row_now.name,
                           'legato.resource.name', row_now.name),
        jsonb_build_array(
            jsonb_build_object('legato.resource.id', 'legato.flow.' || row_now.flow_name,
                               'legato.resource.role', 'flow',
                               'legato.resource.name', row_now.flow_name),
            jsonb_build_object('legato.resource.id', 'legato.work-queue.' || row_now.work_queue,
                               'legato.resource.role', 'work-queue',
                               'legato.resource.name', row_now.work_queue)),
        jsonb_build_object('entrypoint', row_now.entrypoint, 'paused', row_now.paused)
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER deployment_event AFTER INSERT OR UPDATE OR DELETE ON deployments
FOR EACH ROW EXECUTE FUNCTION legato_deployment_event();

CREATE FUNCTION legato_worker_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT (NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (id, event, occurred, received, resource_id, resource, related, payload)
    VALUES (
        replace(gen_random_uuid()::text, '-', ''),
        CASE WHEN TG_OP = 'INSERT' THEN 'legato.worker.started' ELSE 'legato.worker.stopped' END,
        clock_timestamp(), clock_timestamp(),
        'legato.worker.' || NEW.id,
        jsonb_build_object('legato.resource.id', 'legato.worker.' || NEW.id,
                           'legato.resource.name', NEW.name),
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'legato.resource.id', 'legato.work-queue.' || q,
                    'legato.resource.role', 'work-queue', 'legato.resource.name', q)), '[]'::jsonb)
         FROM jsonb_array_elements_text(NEW.queues) AS q),
        jsonb_build_object('host', NEW.host, 'pid', NEW.pid, 'concurrency', NEW.concurrency)
    );
    PERFORM pg_notify('legato_events_stored', '');
    RETURN NULL;
END $$;

CREATE TRIGGER worker_event AFTER INSERT OR UPDATE OF stopped_at ON workers
FOR EACH ROW EXECUTE FUNCTION legato_worker_event();
