-- The flow's parameters as a JSON Schema, recorded by a deploy that loaded its
-- code: the server checks triggered runs against it without importing the flow.
-- NULL: deployed through the API without one (the worker checks parameters).
-- json, not jsonb: a form follows the schema's field order.
ALTER TABLE deployments ADD COLUMN parameter_schema json;
