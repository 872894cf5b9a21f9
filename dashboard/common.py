"""What every page shares: the signed-in person's API client, cached reads, error display and time
formatting. Each person signs in with their own key, kept in their browser session (never on the
server's disk); what they see and may do is what their key may do."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import streamlit as st

from core.contract.client import DEFAULT_URL, Lab, LabError
from core.contract.names import FINISHED
from core.contract.specs import DataSpec

REFRESH_SECONDS = 3  # how often a page showing running jobs reloads them
DASHBOARD_ENV = ("ROBUSTLAB_API_URL",)  # what the dashboard reads: no key, each person brings theirs


def api_url() -> str:
    return os.environ.get("ROBUSTLAB_API_URL", DEFAULT_URL)


def api() -> Lab:
    """The signed-in person's client (`st.session_state["api"]`; tests put a fake there)."""
    return st.session_state["api"]


def me() -> dict:
    """The signed-in person: `{"name", "role", ...}` (asked once per browser session)."""
    if "me" not in st.session_state:
        st.session_state["me"] = call(api().me) or {"name": "?", "role": "member"}
    return st.session_state["me"]


def sign_in(key: str) -> bool:
    """Check `key` against the API and keep the client in this browser session; False (with the
    API's message shown) when it is refused."""
    lab = Lab(api_url(), key.strip())
    who = call(lab.me)
    if who is None:
        return False
    st.session_state["api"], st.session_state["me"] = lab, who
    return True


def signed_in() -> bool:
    """Whether this browser session has signed in: through the form, or once through a link
    carrying `?key=` (which `make up` prints for the local admin; the key leaves the address)."""
    if "api" in st.session_state:
        me()
        return True
    key = st.query_params.get("key")
    if key:
        del st.query_params["key"]
        return sign_in(key)
    return False


def sign_in_form() -> None:
    st.title("robustlab")
    st.markdown("Sign in with your API key (`robustlab keys create NAME`, or ask an admin for one).")
    with st.form("sign_in"):
        key = st.text_input("API key", type="password", key="sign_in_key")
        if st.form_submit_button("Sign in", type="primary") and key and sign_in(key):
            st.rerun()


def sign_out() -> None:
    for name in ("api", "me"):
        st.session_state.pop(name, None)


def may_change(owner_name: str | None) -> bool:
    """Whether the signed-in person may cancel or delete an object of `owner_name`."""
    who = me()
    return who.get("role") == "admin" or owner_name == who.get("name")


def call(fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, or None after showing the API's error as a readable message."""
    try:
        return fn(*args, **kwargs)
    except LabError as e:
        st.error(str(e))
        return None


@st.cache_data(ttl=600, show_spinner=False, max_entries=512)
def image_bytes(_client: Lab, url: str) -> bytes:
    """An artifact's bytes; artifacts never change, so they are cached by URL."""
    return _client.image(url)


def show_image(url: str, caption: str, width: int = 160) -> None:
    data = call(image_bytes, api(), url)
    if data is not None:
        st.image(data, caption=caption, width=width)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def elapsed_and_eta(job: dict, now: datetime | None = None) -> tuple[float | None, float | None]:
    """Seconds the job has run, and the seconds left if its progress rate holds (None if unknown)."""
    now = now or datetime.now(UTC)
    start, end = parse_time(job.get("started_at")), parse_time(job.get("finished_at"))
    if start is None:
        return None, None
    elapsed = ((end or now) - start).total_seconds()
    p = job.get("progress") or 0.0
    if job["status"] in FINISHED or p <= 0:
        return elapsed, (0.0 if job["status"] in FINISHED else None)
    return elapsed, elapsed * (1 - p) / p


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def model_label(m: dict) -> str:
    summary = m.get("summary") or {}
    if m["kind"] == "classifier" and "clean_acc" in summary:
        return f"{m['name']} · clean {summary['clean_acc']:.1%} · robust {summary['robust_acc']:.1%} · {m['id'][:8]}"
    return f"{m['name']} · {m['id'][:8]}"


def choose_model(kind: str, key: str, label: str = "Model") -> dict | None:
    """A select box over the registered models of `kind`; None (with a hint) when there are none."""
    page = call(api().models, kind=kind, limit=200)
    if page is None:
        return None
    if not page["items"]:
        st.info(f"No {kind} models in the registry yet: train one under New experiment.")
        return None
    return st.selectbox(label, page["items"], format_func=model_label, key=key)


def job_link(job_id: str, label: str) -> None:
    """A link to the job's page (Jobs is the default page, at the app's root)."""
    st.markdown(f"[{label}](./?job={job_id})")


def side_by_side_json(left: tuple[str, dict], right: tuple[str, dict]) -> None:
    """Two titled, collapsed JSON documents in two columns (a spec and its result, say)."""
    for column, (title, doc) in zip(st.columns(2), (left, right), strict=True):
        with column:
            st.markdown(f"**{title}**")
            st.json(doc or {}, expanded=False)


def model_data(data: dict, model: dict) -> dict:
    """A preset's data spec pointed at the data the model was registered with (a name,
    `folder:<name>` or `uploaded:<id>`)."""
    own = DataSpec.from_label(model["dataset"])
    return {**data, "name": own.name, "folder": own.folder, "dataset_id": own.dataset_id}
