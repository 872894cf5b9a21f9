"""Running jobs from the store: the one function a worker task calls (`execute_job`), the context
a runner gets, and the runners of the job kinds (named by the table in `core.contract.kinds`).
Everything here may need torch; the API never imports it."""
