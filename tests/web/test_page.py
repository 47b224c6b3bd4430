"""The web page in a real browser against a real server and worker: a photo answered
``espresso`` (and the page's curl and tritonclient snippets answer the same), a face box and
landmarks drawn on the astronaut, a readable error for a text file, a two-class question
trained from photos and asked, a version promoted and rolled back with reasons, a kept image
labelled with one key press, management hidden from an inference-only token, and an int8
version's agreement report with its one-click canary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ARGUS,
    ServerProcess,
    copy_home,
    serving_with_worker,
    start_server,
    wait_for_job,
)
from tests.train.conftest import write_coffee_or_cat
from tests.web.conftest import click, screenshot, wait_for

MODEL = "coffee-or-cat"
INFER_TOKEN = "inf-web-5c1d"


@pytest.fixture(scope="module")
def site(pulled_home: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[ServerProcess]:
    """`argus serve` and `argus worker` on a private copy of the pulled home, as `make run`."""
    home = copy_home(pulled_home, tmp_path_factory.mktemp("web") / "home")
    with serving_with_worker(home, "warning") as server:
        yield server


@pytest.fixture(scope="module")
def files(photos: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("web-files")
    for name in ("coffee", "astronaut", "chelsea"):
        (folder / f"{name}.jpg").write_bytes(photos[name])
    (folder / "notes.txt").write_text("a shopping list, not a photo\n")
    write_coffee_or_cat(folder / "classes", 6)
    return folder


def by_css(driver: Any, css: str) -> Any:
    return driver.find_element("css selector", css)


def all_css(driver: Any, css: str) -> list[Any]:
    return list(driver.find_elements("css selector", css))


def text_of(driver: Any, css: str) -> str:
    found = all_css(driver, css)
    return str(found[0].text) if found else ""


def open_tab(driver: Any, site: ServerProcess, tab: str) -> None:
    if not driver.current_url.startswith(site.url):
        driver.get(f"{site.url}/#{tab}")
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready"),
                 what="the page to start")
    by_css(driver, f"#tab-{tab}").click()
    wait_for(driver, lambda d: by_css(d, f"#panel-{tab}").is_displayed()
             and by_css(d, f"#panel-{tab}").get_attribute("aria-busy") == "false",
             what=f"tab {tab}")


def ask(driver: Any, site: ServerProcess, photo: Path, question: str) -> None:
    from selenium.webdriver.support.ui import Select

    open_tab(driver, site, "ask")
    wait_for(driver, lambda d: all_css(d, f'#ask-question option[value="{question}"]'),
             what="the questions")
    Select(by_css(driver, "#ask-question")).select_by_value(question)
    by_css(driver, "#ask-file").send_keys(str(photo))
    wait_for(driver, lambda d: photo.name in text_of(d, "#ask-drop-help"), what="the photo")
    before = driver.execute_script("return document.querySelector('#ask-result').textContent")
    by_css(driver, "#ask-go").click()
    wait_for(driver, lambda d: by_css(d, "#ask-go").text == "Ask" and (
        by_css(d, "#ask-error").is_displayed()
        or d.execute_script("return document.querySelector('#ask-result').textContent") != before
    ), what=f"the answer to {question}")


def confirm(driver: Any, reason: str, **fields: str) -> None:
    """Fill the confirmation dialog (fields by name, then the reason) and confirm."""
    from selenium.webdriver.support.ui import Select

    wait_for(driver, lambda d: by_css(d, "#confirm").is_displayed(), what="the dialog")
    for name, value in fields.items():
        field = by_css(driver, f"#confirm-field-{name}")
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)
    by_css(driver, "#confirm-reason").send_keys(reason)
    by_css(driver, "#confirm-ok").click()
    wait_for(driver, lambda d: not by_css(d, "#confirm").is_displayed(), what="the dialog")


def test_a_photo_of_coffee_is_answered_espresso(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    ask(browser, site, files / "coffee.jpg", "labels")
    first = wait_for(browser, lambda d: text_of(d, "#ask-result .bars li"), what="labels")
    assert first.split("\n")[0] == "espresso"
    assert "efficientnet-lite0 v1" in text_of(browser, "#ask-result .models-used")
    assert text_of(browser, "#ask-result .timeline li").startswith("labels")

    # the snippets the page copies run as they are and answer the same
    by_css(browser, "#copy-python").click()
    python = wait_for(browser, lambda d: d.execute_script(
        "const p = document.querySelector('#snippet'); "
        "return p && p.dataset.kind === 'python' ? p.textContent : ''"), what="the snippet")
    assert "tritonclient" in python and "model_version=\"1\"" in python
    ran = subprocess.run([sys.executable, "-c", python], cwd=files, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "'label': 'espresso'" in ran.stdout.split("}")[0]
    by_css(browser, "#copy-curl").click()
    command = wait_for(browser, lambda d: d.execute_script(
        "const p = document.querySelector('#snippet'); "
        "return p.dataset.kind === 'curl' ? p.textContent : ''"), what="the curl snippet")
    if shutil.which("curl"):
        out = subprocess.run(["sh", "-c", command], cwd=files, capture_output=True, text=True,
                             timeout=60)
        assert '"label":"espresso"' in out.stdout.replace(" ", ""), out.stderr


def test_a_face_box_and_its_landmarks_are_drawn_on_the_astronaut(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    ask(browser, site, files / "astronaut.jpg", "describe")
    canvas = "document.querySelector('#ask-result canvas')"
    wait_for(browser, lambda d: all_css(d, "#ask-result canvas[data-drawn]"), what="the drawing")
    assert browser.execute_script(f"return {canvas}.dataset.faces") == "1"
    assert browser.execute_script(f"return {canvas}.dataset.points") == "5"  # five landmarks
    answer = httpx.post(f"{site.url}/v1/questions/faces",
                        content=(files / "astronaut.jpg").read_bytes(), timeout=30).json()
    x1, y1, _, y2 = answer["answer"]["faces"][0]["box"]
    # on the box's left edge, half way down, the line is the face colour (yellow, #ffd400)
    row = browser.execute_script(
        f"const c = {canvas}; const k = c.width / 512;"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.round(arguments[0] * k) - 3, Math.round(arguments[1] * k), 7, 1).data);",
        x1, (y1 + y2) / 2)
    pixels = [row[i:i + 3] for i in range(0, len(row), 4)]
    assert any(r > 240 and 195 < g < 230 and b < 40 for r, g, b in pixels), pixels
    left = browser.execute_script(  # and away from any box, the photo itself
        f"return Array.from({canvas}.getContext('2d').getImageData(20, 256, 1, 1).data)")
    assert not (left[0] > 240 and 195 < left[1] < 230 and left[2] < 40), left
    crops = all_css(browser, "#ask-result .crops img")
    assert len(crops) == 1 and browser.execute_script(
        "return arguments[0].naturalWidth", crops[0]) == 112
    screenshot(browser, "ask", height=1200)

    browser.set_window_size(390, 900)  # a phone: nothing wider than the screen
    try:
        wide = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0
    finally:
        browser.set_window_size(1280, 1000)


def test_text_lines_are_overlaid_with_what_they_say(
    browser: Any, site: ServerProcess, tmp_path: Path
) -> None:
    from tests.rendered_text import samples

    sample = samples(1, seed=11)[0]
    photo = tmp_path / "sign.jpg"
    photo.write_bytes(sample.jpeg)
    ask(browser, site, photo, "text")
    canvas = "document.querySelector('#ask-result canvas')"
    wait_for(browser, lambda d: all_css(d, "#ask-result canvas[data-drawn]"), what="the drawing")
    assert browser.execute_script(f"return {canvas}.dataset.lines") == str(len(sample.lines))
    listed = [li.text for li in all_css(browser, "#ask-result ol.text-lines li")]
    assert [item.rsplit(" (", 1)[0] for item in listed] == list(sample.lines)
    answer = httpx.post(f"{site.url}/v1/questions/text", content=sample.jpeg, timeout=60).json()
    (x0, y0), _, _, (_, y3) = answer["answer"]["lines"][0]["box"]
    # On the first line's left edge, half way down, the outline is the text colour (#ff2fd0).
    width = sample.rgb.shape[1]
    row = browser.execute_script(
        f"const c = {canvas}; const k = c.width / arguments[2];"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.round(arguments[0] * k) - 3, Math.round(arguments[1] * k), 7, 1).data);",
        x0, (y0 + y3) / 2, width)
    pixels = [row[i:i + 3] for i in range(0, len(row), 4)]
    assert any(r > 200 and g < 140 and b > 150 for r, g, b in pixels), pixels
    assert "line" in (browser.find_element("css selector", "#ask-result figcaption").text)


def test_the_scene_draws_the_astronauts_gaze_and_says_her_attributes(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    ask(browser, site, files / "astronaut.jpg", "scene")
    canvas = "document.querySelector('#ask-result canvas')"
    wait_for(browser, lambda d: all_css(d, "#ask-result canvas[data-drawn]"), what="the drawing")
    assert browser.execute_script(f"return {canvas}.dataset.gazes") == "1"
    words = text_of(browser, "#ask-result ul.attributes")
    assert words.startswith("face 1: smiling") and "looks at the camera" in words
    assert text_of(browser, "#ask-result ul.attention") == "face 1 looks at the camera: at camera"
    answer = httpx.post(f"{site.url}/v1/questions/scene",
                        content=(files / "astronaut.jpg").read_bytes(), timeout=60).json()
    (face,) = [r["attributes"] for r in answer["answer"]["attributes"]["results"]]
    ox, oy = face["gaze"]["origin"]
    # Round the point between her eyes, the ring that says "at the camera" (#fff04d).
    ring = browser.execute_script(
        f"const c = {canvas}; const k = c.width / 512;"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.round(arguments[0] * k) - 20, Math.round(arguments[1] * k) - 20, 41, 41).data);",
        ox, oy)
    pixels = [ring[i:i + 3] for i in range(0, len(ring), 4)]
    assert any(r > 240 and g > 225 and 50 < b < 110 for r, g, b in pixels)


def test_every_control_is_labelled_and_the_tabs_answer_arrow_keys(
    browser: Any, site: ServerProcess
) -> None:
    from selenium.webdriver.common.keys import Keys

    for tab in ("train", "jobs", "ask"):  # the tabs that build controls as they open
        open_tab(browser, site, tab)
    unfocusable = browser.execute_script(
        "return [...document.querySelectorAll('[role=button], [role=tab][aria-selected=true]')]"
        ".filter((el) => el.tabIndex < 0).map((el) => el.outerHTML.slice(0, 80))")
    assert unfocusable == []
    unlabelled = browser.execute_script("""
        const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
            || el.getAttribute('aria-labelledby') || (el.textContent || '').trim();
        return [...document.querySelectorAll('input, select, button, [role=button]')]
            .filter((el) => el.type !== 'hidden' && !named(el))
            .map((el) => el.outerHTML.slice(0, 80));""")
    assert unlabelled == []
    by_css(browser, "#tab-ask").send_keys(Keys.ARROW_RIGHT)
    wait_for(browser, lambda d: by_css(d, "#panel-models").is_displayed(), what="Models")
    assert browser.switch_to.active_element.get_attribute("id") == "tab-models"
    assert by_css(browser, "#tab-models").get_attribute("aria-selected") == "true"
    browser.switch_to.active_element.send_keys(Keys.END)
    wait_for(browser, lambda d: by_css(d, "#panel-health").is_displayed(), what="Health")


def test_a_text_file_gets_a_readable_error(browser: Any, site: ServerProcess, files: Path
                                          ) -> None:
    ask(browser, site, files / "notes.txt", "labels")
    error = by_css(browser, "#ask-error")
    assert error.is_displayed()
    assert "not an image Argus can read" in error.text and "(415)" in error.text
    assert not by_css(browser, "#ask-result").is_displayed()


def train_in_the_page(browser: Any, site: ServerProcess, files: Path) -> None:
    from selenium.webdriver.support.ui import Select

    open_tab(browser, site, "train")
    by_css(browser, "#train-name").send_keys(MODEL)
    Select(by_css(browser, "#train-mode")).select_by_value("head")
    for card, label in zip(all_css(browser, "#train-classes .class-card"), ("coffee", "cat"),
                           strict=True):
        card.find_element("css selector", "input[id$='-name']").send_keys(label)
        photos = sorted((files / "classes" / label).glob("*.jpg"))
        card.find_element("css selector", "input[type=file]").send_keys(
            "\n".join(str(p) for p in photos))
    by_css(browser, "#train-go").click()
    state = wait_for(browser, lambda d: (t := text_of(d, "#train-state")).startswith(
        ("done", "dead", "failed")) and t, timeout=120, what="the training job")
    assert state.startswith(f"done: {MODEL} version 1"), state


def test_train_a_two_class_question_from_photos_and_ask_it(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    train_in_the_page(browser, site, files)
    rows = [[int(c.text) for c in row.find_elements("css selector", "td")]
            for row in all_css(browser, "#train-result table.confusion tbody tr")]
    assert len(rows) == 2 and rows[0][0] + rows[1][1] >= 2 and rows[0][1] == rows[1][0] == 0
    wait_for(browser, lambda d: all_css(d, "#train-result .pictures img[src^='blob:']"),
             what="the confusion matrix picture")
    by_css(browser, "#train-result input[type=file]").send_keys(str(files / "coffee.jpg"))
    top = wait_for(browser, lambda d: text_of(d, "#train-try-answer .bars li"),
                   what="the new version's answer")
    assert top.split("\n")[0] == "coffee"
    screenshot(browser, "train", height=1250)
    by_css(browser, "#train-promote").click()
    confirm(browser, "first version: right on every held-out photo")
    wait_for(browser, lambda d: "production" in text_of(d, "#train-promoted"), what="promotion")
    asked = httpx.post(f"{site.url}/v1/questions/{MODEL}",
                       content=(files / "coffee.jpg").read_bytes(), timeout=30).json()
    assert asked["models"][0]["version"] == 1
    assert asked["answer"]["labels"][0]["label"] == "coffee"


def production_chip(driver: Any) -> str:
    return " ".join(c.text for c in all_css(driver, "#model-detail > .chips .chip.production"))


def train_by_api(site: ServerProcess, name: str, folder: Path) -> int:
    """``POST /v1/train`` with the photos under ``folder`` (one folder per class); the new
    version's number once the worker has trained it."""
    pairs = sorted(folder.rglob("*.jpg"))
    r = httpx.post(f"{site.url}/v1/train", timeout=30,
                   files=[("photo", (p.name, p.read_bytes())) for p in pairs],
                   data={"name": name, "mode": "head", "label": [p.parent.name for p in pairs]})
    assert r.status_code == 202, r.text
    return int(wait_for_job(site.url, r.json()["id"])["answer"]["version"]["version"])


def test_promote_and_roll_back_a_version_with_reasons(
    browser: Any, site: ServerProcess, files: Path, tmp_path: Path
) -> None:
    # A model of its own, trained here: the test does not depend on the page's training test
    # having run first on the same server (pytest workers may split this module).
    name = f"{MODEL}-versions"
    assert train_by_api(site, name, write_coffee_or_cat(tmp_path / "first", 7, seed=0)) == 1
    promoted = httpx.post(f"{site.url}/v1/models/{name}/promote", timeout=30,
                          json={"version": 1, "reason": "first version"})
    assert promoted.status_code == 200, promoted.text
    more = write_coffee_or_cat(tmp_path / "more", 7, seed=1)  # other photos: a new version
    assert train_by_api(site, name, more) == 2

    open_tab(browser, site, "models")
    wait_for(browser, lambda d: all_css(d, f'#model-list button[data-model="{name}"]'))
    click(browser, f'#model-list button[data-model="{name}"]')
    wait_for(browser, lambda d: production_chip(d) == "production → v1", what="production v1")
    click(browser, "#model-promote")
    confirm(browser, "version 2 saw more photos", version="2")
    wait_for(browser, lambda d: production_chip(d) == "production → v2", what="production v2")
    click(browser, "#model-rollback")
    confirm(browser, "back to the version we know")
    wait_for(browser, lambda d: production_chip(d) == "production → v1", what="rolled back")
    history = text_of(browser, "#model-detail table.history")
    assert "version 2 saw more photos" in history and "back to the version we know" in history
    events = httpx.get(f"{site.url}/v1/models/{name}/history").json()
    assert [(e["action"], e["detail"].get("reason")) for e in events[-2:]] == [
        ("promote", "version 2 saw more photos"), ("rollback", "back to the version we know")]

    by_css(browser, '#model-detail tr[data-version="2"] button').click()
    wait_for(browser, lambda d: all_css(d, "#version-detail .pictures img[src^='blob:']"),
             what="version 2's report")
    assert "held-out accuracy" in text_of(browser, "#version-detail")
    screenshot(browser, "models", height=1400)


def test_a_kept_image_is_labelled_with_one_key_press(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    r = httpx.post(f"{site.url}/v1/questions/labels?keep_uncertain=0.99",
                   content=(files / "chelsea.jpg").read_bytes(), timeout=30)
    digest = r.json()["image"]["sha256"]
    guess = r.json()["answer"]["labels"][0]["label"]
    wait_for(browser, lambda d: httpx.get(f"{site.url}/v1/review").json(), what="the kept image")
    open_tab(browser, site, "review")
    wait_for(browser, lambda d: all_css(d, f'#review-item [data-digest="{digest}"]'),
             what="the kept image in the page")
    first = by_css(browser, "#review-item .choices button").get_attribute("data-label")
    assert first == guess
    browser.execute_script("document.activeElement.blur()")  # keys to the page, not a field
    ActionChains(browser).send_keys("1").perform()
    wait_for(browser, lambda d: httpx.get(f"{site.url}/v1/review/{digest}").json()["label"],
             what="the label")
    item = httpx.get(f"{site.url}/v1/review/{digest}").json()
    assert item["label"] == guess
    assert list((site.home / "datasets" / "efficientnet-lite0" / guess).glob(f"{digest}.*"))
    wait_for(browser, lambda d: all_css(d, "#review-empty"), what="the queue to empty")
    retrain = by_css(browser, "#review-retrain")
    assert retrain.text == "Retrain efficientnet-lite0 on its labelled photos"
    retrain.click()  # one labelled photo is too few: the Train tab shows the job's reason
    wait_for(browser, lambda d: by_css(d, "#panel-train").is_displayed(), what="Train")
    state = wait_for(browser, lambda d: (t := text_of(d, "#train-state")).startswith(
        ("dead", "failed")) and t, timeout=60, what="the job's end")
    assert "at least two classes" in state


def test_an_inference_token_sees_no_management(browser: Any, pulled_home: Path,
                                               tmp_path: Path) -> None:
    home = copy_home(pulled_home, tmp_path / "home")
    server = start_server(home, "--no-preload", env={
        "ARGUS_ADMIN_TOKENS": "adm-web-90ab", "ARGUS_INFER_TOKENS": INFER_TOKEN})
    try:
        server.wait_ready()
        browser.get(f"{server.url}/#models")
        wait_for(browser, lambda d: d.execute_script("return document.body.dataset.ready"))
        assert by_css(browser, "#needs-token").is_displayed()
        by_css(browser, "#token").send_keys(INFER_TOKEN)
        by_css(browser, "#token-form button").click()
        wait_for(browser, lambda d: "inference token" in text_of(d, "#whoami"), what="whoami")
        assert not by_css(browser, "#needs-token").is_displayed()
        for tab in ("train", "review", "records"):
            assert not by_css(browser, f"#tab-{tab}").is_displayed(), tab
        wait_for(browser, lambda d: all_css(d, "#model-detail h2"), what="a model")
        assert not all_css(browser, "#model-promote") or not by_css(
            browser, "#model-promote").is_displayed()
        assert browser.execute_script("return sessionStorage.getItem('argus.token')") == (
            INFER_TOKEN)
    finally:
        browser.execute_script("sessionStorage.clear()")
        server.stop()


def test_an_int8_version_shows_its_agreement_and_starts_a_canary_in_one_click(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    made = subprocess.run(
        [ARGUS, "models", "optimize", "efficientnet-lite0", "--calibrate", str(files),
         "--json"], env={**os.environ, "ARGUS_HOME": str(site.home)},
        capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    version = json.loads(made.stdout)["version"]["version"]

    open_tab(browser, site, "models")
    button = '#model-list button[data-model="efficientnet-lite0"]'
    wait_for(browser, lambda d: all_css(d, button))
    by_css(browser, button).click()
    row = f'#model-detail tr[data-version="{version}"]'
    wait_for(browser, lambda d: all_css(d, row), what="the int8 version's row")
    assert "int8 of v1" in text_of(browser, row)
    by_css(browser, f"{row} button").click()
    wait_for(browser, lambda d: all_css(d, "#version-detail .agreement"), what="the agreement")
    shown = text_of(browser, "#version-detail")
    assert "top-1 agreement" in shown and "top-5 overlap" in shown and "held-out images" in shown
    by_css(browser, "#version-canary").click()
    chip = f"canary → v{version} (10%)"
    wait_for(browser, lambda d: chip in text_of(d, "#model-detail > .chips"), what="the chip")
    event = httpx.get(f"{site.url}/v1/models/efficientnet-lite0/history").json()[-1]
    assert event["action"] == "canary" and event["to_version"] == version
    assert "top-1 agreement" in event["detail"]["reason"]


def test_a_person_is_drawn_with_a_skeleton(
    browser: Any, site: ServerProcess, files: Path
) -> None:
    ask(browser, site, files / "astronaut.jpg", "people")
    canvas = "document.querySelector('#ask-result canvas')"
    wait_for(browser, lambda d: all_css(d, "#ask-result canvas[data-drawn]"), what="the drawing")
    assert browser.execute_script(f"return {canvas}.dataset.people") == "1"
    answer = httpx.post(f"{site.url}/v1/questions/people",
                        content=(files / "astronaut.jpg").read_bytes(), timeout=30).json()
    (person,) = answer["answer"]["people"]
    seen = {p["name"]: p for p in person["pose"]
            if p["visibility"] >= 0.5 and p["presence"] >= 0.5}  # fmt: skip
    assert int(browser.execute_script(f"return {canvas}.dataset.points")) == len(seen)
    assert int(browser.execute_script(f"return {canvas}.dataset.bones")) >= 10
    # Half way along the shoulder line, the bone's colour (the page's person blue, #00a0ff).
    left, right = seen["left_shoulder"], seen["right_shoulder"]
    row = browser.execute_script(
        f"const c = {canvas}; const k = c.width / 512;"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.round(arguments[0] * k), Math.round(arguments[1] * k) - 3, 1, 7).data);",
        (left["x"] + right["x"]) / 2, (left["y"] + right["y"]) / 2)
    pixels = [row[i:i + 3] for i in range(0, len(row), 4)]
    assert any(r < 30 and 140 < g < 180 and b > 230 for r, g, b in pixels), pixels
    assert "1 person" in text_of(browser, "#ask-result .part")
