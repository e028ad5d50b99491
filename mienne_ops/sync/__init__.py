"""The I/O of each flow for one record at a time (OCA's importers/exporters), without Dagster.

`flows/` wires these to sensors and jobs; tests can drive them directly against the sandbox.
"""
