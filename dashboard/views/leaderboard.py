"""Leaderboard: every registered classifier under every protocol it was evaluated with; sort by
any column, download as CSV."""

from __future__ import annotations

import streamlit as st

from dashboard.common import api, call
from dashboard.evaluation_view import leaderboard_rows


def render() -> None:
    st.title("Leaderboard")
    page = call(api().models, kind="classifier", limit=200)
    if page is None:
        return
    table = leaderboard_rows(page["items"])
    if table.empty:
        st.info("No evaluated classifiers yet: train one, or evaluate one under New experiment.")
        return
    st.caption(
        "Robust accuracy is the per-point worst case over the protocol's attacks, run in order. "
        "A `pgd` or reduced-settings row is a quick look, not a robustness claim. A certified row is "
        "randomized smoothing's L2 certificate (Cohen et al. 2019), its empirical attack beside it."
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="leaderboard",
        column_config={
            "clean": st.column_config.NumberColumn(format="percent"),
            "robust": st.column_config.NumberColumn(format="percent"),
            "certified": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.download_button(
        "Download CSV",
        table.to_csv(index=False),
        file_name="robustlab-leaderboard.csv",
        mime="text/csv",
        key="leaderboard_csv",
    )


render()
