"""robustlab's dashboard: `streamlit run dashboard/app.py`. Talks to the API only, at
ROBUSTLAB_API_URL; each person signs in with their own key (`make up` prints a link that signs the
local admin in)."""

import streamlit as st

from dashboard.common import me, sign_in_form, sign_out, signed_in

st.set_page_config(page_title="robustlab", page_icon=":material/shield:", layout="wide")
if not signed_in():
    sign_in_form()
    st.stop()
who = me()
st.sidebar.caption(f"Signed in as **{who['name']}** ({who['role']})")
if st.sidebar.button("Sign out", key="sign_out"):
    sign_out()
    st.rerun()
pages = [
    st.Page("pages/jobs.py", title="Jobs", icon=":material/list:", default=True),
    st.Page("pages/new_experiment.py", title="New experiment", icon=":material/science:"),
    st.Page("pages/robustness.py", title="Robustness", icon=":material/show_chart:"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    st.Page("pages/attack_lab.py", title="Attack lab", icon=":material/target:"),
    st.Page("pages/diffusion.py", title="Diffusion", icon=":material/blur_on:"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
]
st.navigation(pages).run()
