-- Traces, round 2 (issue 14): the trace and span ids (hex) of the span a log line
-- was written in, when traces were on; NULL otherwise.
ALTER TABLE logs ADD COLUMN trace_id TEXT;
ALTER TABLE logs ADD COLUMN span_id TEXT;
