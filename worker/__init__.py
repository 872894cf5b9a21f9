"""Celery worker: one task that hands a job id to `core.jobs.execute.execute_job`."""
