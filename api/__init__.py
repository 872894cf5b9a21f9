"""The REST API (FastAPI). It never imports torch or the worker: jobs go out by task name."""
