"""What every page shares: the API client, cached reads, error display and time formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core.contract.client import Lab, LabError
from core.contract.names import FINISHED

REFRESH_SECONDS = 3  # how often a page showing running jobs reloads them


@st.cache_resource
def _client_from_env() -> Lab:
    return Lab.from_env()


def api() -> Lab:
    """The client in `st.session_state["api"]` (tests put a fake there), else one from the
    environment."""
    return st.session_state["api"] if "api" in st.session_state else _client_from_env()


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
