"""Jobs: the live table (status, progress, elapsed, ETA, cancel) and one job's page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.contract.kinds import JOB_KINDS
from core.contract.names import FINISHED, JOB_STATUSES
from dashboard.charts import training_curves
from dashboard.common import (
    REFRESH_SECONDS,
    api,
    call,
    duration,
    elapsed_and_eta,
    may_change,
    show_image,
    side_by_side_json,
)
from dashboard.evaluation_view import show_certification, show_evaluation


def job_rows(items: list[dict]) -> pd.DataFrame:
    rows = []
    for j in items:
        elapsed, eta = elapsed_and_eta(j)
        rows.append(
            {
                "id": j["id"],
                "kind": j["kind"],
                "status": j["status"] + (" (stalled: its worker stopped renewing it)" if j.get("stalled") else ""),
                "progress": j["progress"],
                "message": j["message"],
                "elapsed": duration(elapsed),
                "ETA": duration(eta),
                "created": j["created_at"][:19].replace("T", " "),
            }
        )
    return pd.DataFrame(rows)


def job_table() -> None:
    left, right = st.columns(2)
    statuses = left.multiselect("Status", JOB_STATUSES, key="jobs_status")
    kind = right.selectbox("Kind", ["all", *JOB_KINDS], key="jobs_kind")

    @st.fragment(run_every=REFRESH_SECONDS)
    def live() -> None:
        page = call(api().jobs, kind=None if kind == "all" else kind, limit=200)
        if page is None:
            return
        items = [j for j in page["items"] if not statuses or j["status"] in statuses]
        st.caption(f"{len(items)} of {page['total']} jobs · refreshes every {REFRESH_SECONDS} s")
        if not items:
            st.info("No jobs yet: start one under New experiment.")
            return
        st.dataframe(
            job_rows(items),
            hide_index=True,
            width="stretch",
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")
            },
        )
        active = [j for j in items if j["status"] not in FINISHED and may_change(j["owner"])]
        if active:
            c1, c2 = st.columns([3, 1])
            victim = c1.selectbox(
                "Cancel a job",
                [j["id"] for j in active],
                key="cancel_choice",
                format_func=lambda i: f"{i[:8]} · {next(j['kind'] for j in active if j['id'] == i)}",
            )
            if c2.button("Cancel", key="cancel") and call(api().cancel, victim) is not None:
                st.toast(f"cancel requested for {victim[:8]}")

    live()
    opened = st.text_input("Open a job by id", key="open_job")
    if opened:
        st.query_params["job"] = opened.strip()
        st.rerun()


def read_job(job_id: str) -> dict | None:
    """The job's current state as the API gives it, or None after showing the API's error."""
    handle = call(api().job, job_id)
    return None if handle is None else handle.data


def job_page(job_id: str) -> None:
    if st.button("← all jobs", key="back"):
        del st.query_params["job"]
        st.rerun()
    job = read_job(job_id)
    if job is None:
        return
    running = job["status"] not in FINISHED

    @st.fragment(run_every=REFRESH_SECONDS if running else None)
    def live() -> None:
        current = read_job(job_id)
        if current is None:
            return
        elapsed, eta = elapsed_and_eta(current)
        st.subheader(f"{current['kind']} · {current['status']}")
        st.progress(
            current["progress"], text=f"{current['message']} · elapsed {duration(elapsed)} · ETA {duration(eta)}"
        )
        if current["status"] == "failed":
            st.error(f"The job failed: {current['error']}")
        metrics = call(api().metrics, job_id) or []
        if metrics:
            st.plotly_chart(training_curves(metrics), width="stretch", key="curves")
        if (
            current["status"] not in FINISHED
            and may_change(current["owner"])
            and st.button("Cancel this job", key="cancel_one")
        ):
            call(api().cancel, job_id)
        if current["status"] in FINISHED and running:
            st.rerun()  # the job just finished: redraw the whole page once, with its artifacts

    st.caption(f"job {job_id}")
    live()
    if (job["result"] or {}).get("breakdown"):
        show_evaluation(job["result"], key="job_evaluation")
    if job["kind"] == "certification" and job["result"]:
        show_certification(job["result"], key="job_certification")
    side_by_side_json(("Spec", job["spec"]), ("Result", job["result"]))
    artifacts = call(api().artifacts, job_id) or []
    if artifacts:
        st.markdown("**Artifacts**")
        st.dataframe(pd.DataFrame(artifacts)[["name", "type", "size", "url"]], hide_index=True)
        images = [a for a in artifacts if a["content_type"] == "image/png"][:12]
        cols = st.columns(6)
        for i, a in enumerate(images):
            with cols[i % 6]:
                show_image(a["url"], a["name"], width=120)


def render() -> None:
    st.title("Jobs")
    job_id = st.query_params.get("job")
    if job_id:
        job_page(job_id)
    else:
        job_table()


render()
