"""robustlab's dashboard: `streamlit run dashboard/app.py`. Talks to the API only, at
ROBUSTLAB_API_URL; each person signs in with their own key (`make up` prints a link that signs the
local admin in).

Every page has its own address (`/leaderboard`, `/models`, ...) that opens it from a bookmark or a
shared link: the pages live in `views/`, not `pages/` (a `pages/` folder makes Streamlit run the
file of the address alone, without this script and its sign-in), and `st.navigation` gets all of
them on every run, signed in or not (Streamlit only opens an address given to it in a session's
first run), so the sign-in form shows on the page the link named and signing in stays there."""

import streamlit as st

from dashboard.common import me, sign_in_form, sign_out, signed_in


def view(name: str, title: str, icon: str, **kwargs) -> st.Page:
    return st.Page(f"views/{name}.py", title=title, icon=icon, url_path=name, **kwargs)


st.set_page_config(page_title="robustlab", page_icon=":material/shield:", layout="wide")
jobs_icon = ":material/list:"
pages = [
    st.Page("views/jobs.py", title="Jobs", icon=jobs_icon, url_path="", default=True),  # at the root
    view("new_experiment", "New experiment", ":material/science:"),
    view("robustness", "Robustness", ":material/show_chart:"),
    view("leaderboard", "Leaderboard", ":material/leaderboard:"),
    view("attack_lab", "Attack lab", ":material/target:"),
    view("diffusion", "Diffusion", ":material/blur_on:"),
    view("models", "Models", ":material/inventory_2:"),
    view("jobs", "Jobs", jobs_icon, visibility="hidden"),  # and at `/jobs`, as a person would guess
]
signed = signed_in()
current = st.navigation(pages, position="sidebar" if signed else "hidden")
if not signed:
    sign_in_form()
    st.stop()
who = me()
st.sidebar.caption(f"Signed in as **{who['name']}** ({who['role']})")
if st.sidebar.button("Sign out", key="sign_out"):
    sign_out()
    st.rerun()
current.run()
