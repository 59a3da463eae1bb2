"""The ``legato`` command-line interface: a thin view over `legato.client.Client`.

Entry point: `legato.cli.main.main` (also ``python -m legato``). Each command
group lives in its own module; rich is imported inside functions only, so
that ``legato --help`` and scripted ``--json`` calls start fast.
"""
