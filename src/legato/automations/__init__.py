"""Automations: event triggers and the actions they fire, evaluated exactly once.

`model` (the spec), `matching` (the in-memory index and label checks),
`evaluator` (one evaluation step), `actions` (the action registry), `service`
(apply / list / explain for the CLI and the API).
"""
