"""Robustness: curves of the chosen models, the accuracy–robustness scatter, the study table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.charts import accuracy_robustness, robustness_curves
from dashboard.common import api, call, model_label

STUDY_REFRESH_SECONDS = 10


@st.fragment(run_every=STUDY_REFRESH_SECONDS)
def study_table() -> None:
    """The chosen study's table and scatter, reloaded while its runs finish."""
    studies = call(api().studies) or []
    if not studies:
        st.info("No studies yet: start a SAT study under New experiment.")
        return
    chosen = st.selectbox(
        "Study",
        studies,
        key="rb_study",
        format_func=lambda s: f"{s['name']} · {s['preset']} · {s['created_at'][:16]} · {s['id'][:8]}",
    )
    study = call(api().study, chosen["id"])
    if study is None:
        return
    st.caption("jobs: " + ", ".join(f"{n} {status}" for status, n in sorted(study["jobs"].items())))
    if study["table"]:
        st.caption("Robust accuracy under: " + "; ".join(study.get("protocols") or ["(not recorded)"]))
        st.dataframe(pd.DataFrame(study["table"]), hide_index=True, width="stretch")
    else:
        st.info("No run of this study has finished yet.")
    jobs = call(api().jobs, study=chosen["id"], status="succeeded", limit=200) or {"items": []}
    ids = {j["result"]["model_id"] for j in jobs["items"] if j.get("result")}
    models = [m for m in all_classifiers() if m["id"] in ids]
    if models:
        st.plotly_chart(accuracy_robustness(models), width="stretch", key="study_scatter")


def all_classifiers() -> list[dict]:
    page = call(api().models, kind="classifier", limit=200)
    return page["items"] if page else []


def render() -> None:
    st.title("Robustness")
    models = all_classifiers()
    if not models:
        st.info("No classifiers in the registry yet: train one under New experiment.")
        return
    st.subheader("Robustness curves")
    chosen = st.multiselect("Models", models, default=models[:4], format_func=model_label, key="rb_models")
    if chosen:
        labels = {(m.get("summary") or {}).get("curve_protocol_label") for m in chosen} - {None}
        st.caption("Each model's stored curve, measured with: " + ("; ".join(sorted(labels)) or "FGSM + PGD"))
        st.plotly_chart(robustness_curves(chosen), width="stretch", key="curves")
    st.subheader("Accuracy against robustness")
    st.caption(
        "One faint point per model, its robust accuracy under its own protocol (see Leaderboard); per "
        "activation the mean ± one standard deviation."
    )
    st.plotly_chart(accuracy_robustness(models), width="stretch", key="scatter")
    st.subheader("Study table")
    study_table()


render()
