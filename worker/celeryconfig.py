"""Celery's configuration, loaded lazily by the app the first time it is needed (not at import
of `worker.app`): JSON only; a task is acknowledged after it ran and re-queued if its worker dies."""

from core.settings import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
broker_transport_options = {"visibility_timeout": _settings.visibility_timeout}
broker_connection_retry_on_startup = True
task_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_default_queue = "train"
worker_hijack_root_logger = False
worker_send_task_events = False
# Redis away for a moment: a running job goes on (it needs only the database; its lease keeps any
# redelivery from running it twice) instead of being cancelled and queued again.
worker_cancel_long_running_tasks_on_connection_loss = False
