"""Running jobs from the store: the one function a worker task calls (`execute_job`), and one
runner per job kind. `kinds` is torch-free (the API imports it); the rest needs torch."""
