"""The dashboard in headless Chromium against a running stack that this test starts and fills
with its own jobs: every page opens, its charts and images render with that data, and an image
uploaded in the Attack lab comes back attacked. A screenshot of each page is saved under
`test-artifacts/screenshots/` (and, with ROBUSTLAB_DOCS_SCREENSHOTS=1, small copies in docs/)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tests.integration.conftest import running_stack, wait_job

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 60_000
# Each page's address, as a person bookmarks or shares it, and the heading it opens with.
PAGE_HEADINGS = {
    "": "Jobs",
    "jobs": "Jobs",
    "new_experiment": "New experiment",
    "robustness": "Robustness",
    "leaderboard": "Leaderboard",
    "attack_lab": "Attack lab",
    "diffusion": "Diffusion",
    "models": "Models",
}
NAVIGATION = ["Jobs", "New experiment", "Robustness", "Leaderboard", "Attack lab", "Diffusion", "Models"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("stack"), with_dashboard=True) as s:
        yield s


@pytest.fixture(scope="module")
def lab(stack):
    """The jobs the pages will show: a two-run SAT study (ReLU, SiLU) and a small DDPM."""
    from core.contract.presets import ddpm_preset

    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=30) as c:
        study = c.post(
            "/v1/studies",
            json={
                "name": "browser-sat",
                "train_preset": "smoke",
                "seeds": 1,
                "epochs": 2,
                "activations": ["relu", "silu"],
                "probes": [],
            },
        ).json()
        ddpm = ddpm_preset("smoke").model_copy(update={"epochs": 1}).model_dump(mode="json")
        diffusion_job = c.post("/v1/jobs", json={"kind": "ddpm_training", "spec": ddpm}).json()
        jobs = c.get("/v1/jobs", params={"study": study["id"]}).json()["items"]
        done = [wait_job(c, j["id"], timeout=300) for j in [*jobs, diffusion_job]]
        assert all(j["status"] == "succeeded" for j in done), [j["error"] for j in done]
        models = {m["name"]: m for m in c.get("/v1/models").json()["items"]}
    return {"study": study, "jobs": done, "models": models}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    p = context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    yield p
    context.close()


def open_page(page, stack, path: str, *, key: str | None = None) -> None:
    """Open a page signed in (a new page load is a new browser session: the link carries the key,
    as the one `make up` prints does); `key=""` opens it signed out."""
    key = stack.key if key is None else key
    sign_in = f"{'&' if '?' in path else '?'}key={key}" if key else ""
    page.goto(f"{stack.dashboard_url}/{path}{sign_in}")
    page.wait_for_selector('[data-testid="stAppViewContainer"]')
    page.wait_for_function(
        '!document.querySelector(\'[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]\')'
    )


def run_finished(page) -> None:
    """Wait until the app's script run is over (Streamlit marks its state on the app's root)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def plotly_traces(page, count: int) -> list[list[str]]:
    """Wait for `count` Plotly charts; the names of each chart's traces."""
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {count}")
    return page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].map(el => el.data.map(t => t.name))")


def loaded_images(page, at_least: int) -> int:
    page.wait_for_function(
        'n => [...document.querySelectorAll(\'[data-testid="stImage"] img, [data-testid="stImageContainer"] img\')]'
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n",
        arg=at_least,
    )
    return page.evaluate(
        'document.querySelectorAll(\'[data-testid="stImage"] img, [data-testid="stImageContainer"] img\').length'
    )


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if os.environ.get("ROBUSTLAB_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        img = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.LANCZOS)
        img.quantize(colors=128).save(DOCS / f"{name}.png", optimize=True)


def test_jobs_page_lists_the_jobs_and_a_jobs_page_draws_its_curves(page, stack, lab):
    open_page(page, stack, "")
    page.get_by_text(f"{len(lab['jobs'])} of {len(lab['jobs'])} jobs").wait_for()
    page.locator('[data-testid="stDataFrame"]').wait_for()
    screenshot(page, "jobs")
    job = lab["jobs"][0]
    open_page(page, stack, f"?job={job['id']}")
    names = plotly_traces(page, 1)[0]
    assert {"train_loss", "clean_acc", "robust_acc"} <= set(names)
    page.get_by_text("adversarial_training · succeeded").wait_for()
    screenshot(page, "job")


def test_new_experiment_queues_a_job(page, stack, lab):
    open_page(page, stack, "new_experiment")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Queued adversarial_training job").wait_for()
    screenshot(page, "new_experiment")
    queued = page.get_by_text("Queued adversarial_training job").inner_text().split()[-1].rstrip(".")
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}) as c:
        assert c.get(f"/v1/jobs/{queued}").json()["kind"] == "adversarial_training"
        c.post(f"/v1/jobs/{queued}/cancel")


def test_robustness_draws_the_models_of_the_study(page, stack, lab):
    open_page(page, stack, "robustness")
    charts = plotly_traces(page, 3)
    classifier_names = {n for n, m in lab["models"].items() if m["kind"] == "classifier"}
    assert classifier_names <= set(charts[0])  # one curve per model
    assert {"relu (n=1)", "silu (n=1)"} <= set(charts[1])  # the scatter's means per activation
    page.get_by_text("jobs: 2 succeeded").wait_for()
    screenshot(page, "robustness")


def test_attack_lab_attacks_an_uploaded_image(page, stack, lab, tmp_path):
    digit = (load_digits().images[0] / 16 * 255).astype(np.uint8)
    path = tmp_path / "zero.png"
    Image.fromarray(digit).resize((64, 64)).save(path)
    open_page(page, stack, "attack_lab")
    page.get_by_text("upload", exact=True).click()
    page.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text("zero.png").wait_for()
    page.get_by_role("button", name="Attack", exact=True).click()
    page.get_by_text("the model was").wait_for()
    assert loaded_images(page, 3) == 3  # original, adversarial, perturbation
    assert len(plotly_traces(page, 2)) == 2  # top-5 before and after
    screenshot(page, "attack_lab")


def test_diffusion_samples_and_explores(page, stack, lab):
    open_page(page, stack, "diffusion")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("samples, ddim-50").wait_for()
    assert loaded_images(page, 1 + 8) == 1 + 8  # the grid and the trajectory
    screenshot(page, "diffusion")
    page.get_by_role("tab", name="Forward-process explorer").click()
    page.get_by_role("button", name="Explore").click()
    page.get_by_text("predicted x̂_0").wait_for()
    assert loaded_images(page, 1 + 8 + 3) >= 1 + 8 + 3
    screenshot(page, "diffusion_explorer")


def test_models_page_lists_the_registry(page, stack, lab):
    open_page(page, stack, "models")
    page.get_by_text(f"{len(lab['models'])} models").wait_for()
    page.locator('[data-testid="stDataFrame"]').wait_for()
    page.get_by_text("The job that made it").wait_for()
    screenshot(page, "models")


def test_leaderboard_lists_the_evaluated_models_and_offers_csv(page, stack, lab):
    open_page(page, stack, "leaderboard")
    page.get_by_text("Robust accuracy is the per-point worst case").wait_for()
    page.locator('[data-testid="stDataFrame"]').wait_for()
    with page.expect_download() as download:
        page.get_by_text("Download CSV").click()
    csv = Path(download.value.path()).read_text().splitlines()
    classifiers = [m for m in lab["models"].values() if m["kind"] == "classifier"]
    assert csv[0].startswith("model,dataset,method,activation,norm,eps,clean,robust,certified,protocol")
    assert len(csv) == 1 + len(classifiers)  # each trained classifier, under its training's protocol
    assert all("standard (apgd-ce10" in row for row in csv[1:])
    screenshot(page, "leaderboard")


def test_the_dashboard_asks_for_a_key_and_refuses_a_wrong_one(page, stack):
    open_page(page, stack, "", key="")
    page.get_by_text("Sign in with your API key").wait_for()
    assert page.get_by_text("of 3 jobs").count() == 0  # nothing shown before signing in
    page.get_by_label("API key").fill("rl_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("invalid, expired or revoked API key").wait_for()
    page.get_by_label("API key").fill(stack.key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "sign-in-form"])
@pytest.mark.parametrize("path", list(PAGE_HEADINGS), ids=lambda path: path or "root")
def test_every_page_opens_from_its_own_link(page, stack, path, with_key):
    """A link to a page, opened in a new browser session, shows that page: signed in by the link's
    key, or after the sign-in form; never a traceback, a "Page not found", or the files' names."""
    open_page(page, stack, path, key=None if with_key else "")
    if not with_key:
        page.get_by_text("Sign in with your API key").wait_for()
        run_finished(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # nothing to see before signing in
        page.get_by_label("API key").fill(stack.key)
        page.get_by_role("button", name="Sign in").click()
    page.locator("h1", has_text=PAGE_HEADINGS[path]).wait_for()
    run_finished(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Page not found" not in page.locator("body").inner_text()
    links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
    assert [link.splitlines()[-1] for link in links] == NAVIGATION  # each title, after its icon's name
    assert urlparse(page.url).path == f"/{path}"  # still the page the link named
