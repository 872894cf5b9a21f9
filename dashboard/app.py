"""robustlab's dashboard: `streamlit run dashboard/app.py`. Talks to the API only (its URL and
key come from ROBUSTLAB_API_URL and ROBUSTLAB_API_KEY; `make up` sets both)."""

import streamlit as st

st.set_page_config(page_title="robustlab", page_icon=":material/shield:", layout="wide")
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
