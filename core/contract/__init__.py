"""The torch-free contract every part of robustlab shares: the names (statuses, queues, model
kinds, activations, architectures, datasets), the job specs, the presets, the table of job kinds,
the checkpoint format, progress and stop hooks, and the HTTP client.

`api`, `worker`, `dashboard` and the rest of `core` derive from these modules; none of them
imports torch (a test asserts it), so the API and the dashboard can use them freely.
"""
