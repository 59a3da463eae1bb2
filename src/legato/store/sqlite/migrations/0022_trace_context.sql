-- Traces (issue 14): the W3C traceparent of a flow run's `flow NAME` span,
-- stored with the run so that every attempt, in any process, continues the trace.
ALTER TABLE flow_runs ADD COLUMN trace_context TEXT;
