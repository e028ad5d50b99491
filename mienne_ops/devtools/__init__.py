"""Tools for running mienne-ops against the sandbox outside production: tests, benchmarks, demos.

`harness` drives the real definitions the way the daemon would, in process (`FlowDriver`), and
serves the webhook receiver in a thread (`ReceiverServer`); `daemon` runs the real
`dagster-daemon` against the sandbox, as an operator would. Nothing in the code location imports
this package.
"""
