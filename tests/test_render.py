"""`runbooks render`: the static site from a real `runbooks verify` of the drifted sandbox, its escaping, and
what a browser actually shows (a headless Chromium screenshot, decoded here without Pillow)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.history import History
from runbooks.reports import read_results_json, write_results_json
from runbooks.result import Outcome, StepRecord
from tests.conftest import REPO, write_config

POST_DEPLOY = "features/deployment/post_deploy_validation.feature"
PITR = 'the DynamoDB table "acme-tenants-sandbox" has point-in-time recovery enabled'
PITR_MANUAL = "aws dynamodb describe-continuous-backups --table-name acme-tenants-sandbox"
FAIL_RGB, PASS_RGB = (0xD1, 0x24, 0x2F), (0x1A, 0x7F, 0x37)  # --fail and --pass in templates/render.css


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@dataclass
class Site:
    out: Path
    results: dict  # the results.json document

    def page(self, name: str = "deployment/post_deploy_validation.html") -> str:
        return (self.out / name).read_text(encoding="utf-8")


# Earlier runs seeded into the history before the real one: (started, what became of the failing steps).
SEEDED = [("2026-01-10T09:00:00+00:00", Outcome.PASS), ("2026-01-11T09:00:00+00:00", Outcome.ERROR),
          ("2026-01-12T09:00:00+00:00", Outcome.PASS)]
LAST_VERIFIED = "2026-01-12 09:00 UTC"


def seed_history(path: Path, records: list[StepRecord]) -> None:
    """Older runs of the same runbook in ``path``: all passing, or with the failures as ERROR."""
    history = History(path)
    try:
        for started, outcome in SEEDED:
            metadata = {"environment": "sandbox-drifted", "target": "moto", "started_at": started,
                        "finished_at": started}
            run_id = history.start_run(metadata)
            for record in records:
                bad = record.outcome in (Outcome.FAIL, Outcome.ERROR, Outcome.SKIPPED)
                history.add(run_id, replace(record, outcome=outcome) if bad else record)
            history.finish_run(run_id, metadata, 0 if outcome is Outcome.PASS else 3, "finished")
    finally:
        history.close()


@pytest.fixture(scope="module")
def drifted_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """`runbooks verify --env sandbox-drifted` on the shipped post-deploy runbook, recorded in a history that
    already holds three older runs of it, then `runbooks render` with the results and that history."""
    reports = tmp_path_factory.mktemp("reports")
    history = reports / "history.sqlite"
    code, out, err = cli("verify", "--config", str(REPO / "runbooks.toml"), "--env", "sandbox-drifted",
                         "--report-dir", str(reports), "--history", str(history), str(REPO / POST_DEPLOY))
    assert code == 1, out + err
    seed_history(history, read_results_json(reports / "results.json")[1])
    site = tmp_path_factory.mktemp("site")
    code, out, err = cli("render", "--config", str(REPO / "runbooks.toml"), "--results", str(reports / "results.json"),
                         "--history", str(history), "--out", str(site), str(REPO / POST_DEPLOY))
    assert code == 0, out + err
    assert out.splitlines() == [f"runbooks render: 1 runbook page(s) in {site} (index.html, index.md)",
                                f"runbooks render: from results {reports / 'results.json'} and history {history} "
                                "(4 run(s))"]
    return Site(site, json.loads((reports / "results.json").read_text()))


def step_items(page: str) -> dict[str, str]:
    """Checklist items of a rendered page: step text (without keyword) -> the item's HTML."""
    items = {}
    for block in re.findall(r'<li class="step[^"]*" id="line-\d+">.*?</li>', page, flags=re.S):
        match = re.search(r'<span class="kw">.*?</span>(.*?)</div>', block, re.S)
        assert match, block
        items[re.sub(r"<[^>]+>", "", match.group(1)).strip().replace("&quot;", '"')] = block
    return items


def test_index_lists_the_runbook_by_category_severity_and_owner(drifted_site):
    index = drifted_site.page("index.html")
    link = '<a href="deployment/post_deploy_validation.html">Post-deployment validation of the storage layer'
    assert index.count(link) == 5  # failing runbooks, the category table, by taxonomy, by severity, by owner
    assert '<h2 id="category-deployment">deployment</h2>' in index
    assert '<span class="sev sev-critical">critical</span>' in index and "<td>platform-team</td>" in index
    assert '<h2 id="by-severity">By severity</h2>' in index and "<h3>critical</h3>" in index
    assert '<h2 id="by-owner">By owner</h2>' in index and "<h3>platform-team</h3>" in index
    assert "Runbooks with failing steps" in index and "sandbox-drifted (moto, eu-west-1)" in index
    md = drifted_site.page("index.md")
    assert "## deployment" in md and "(deployment/post_deploy_validation.md) | critical | platform-team |" in md
    assert "### critical" in md and "### platform-team" in md


def test_page_shows_the_pitr_failure_with_its_evidence_and_manual_command(drifted_site):
    page = drifted_site.page()
    item = step_items(page)[PITR]
    assert item.startswith('<li class="step fail" id="line-')
    assert '<span class="badge fail">FAIL</span>' in item
    assert "<dt>expected</dt><dd>PointInTimeRecoveryStatus ENABLED</dd>" in item
    assert "<dt>observed</dt><dd>PointInTimeRecoveryStatus DISABLED</dd>" in item
    assert f"by hand: <code>{PITR_MANUAL}</code>" in item
    assert "update-continuous-backups --table-name acme-tenants-sandbox" in item  # the fix
    # A step that held shows PASS and its own manual command.
    audit = step_items(page)['the DynamoDB table "acme-audit-sandbox" has point-in-time recovery enabled']
    assert '<li class="step pass"' in audit and '<span class="badge pass">PASS</span>' in audit
    assert "aws dynamodb describe-continuous-backups --table-name acme-audit-sandbox" in audit


def test_summary_box_lists_every_failure_with_environment_time_and_coverage(drifted_site):
    page = drifted_site.page()
    summary = re.search(r'<section class="summary fail">.*?</section>', page, re.S).group(0)
    failed = [r for r in drifted_site.results["results"] if r["outcome"] == "fail"]
    assert len(failed) == 5
    assert f"{len(failed)} step(s) need attention: {len(failed)} failed" in summary
    for record in failed:
        assert record["step"].replace('"', "&quot;") in summary
    assert "PointInTimeRecoveryStatus DISABLED" in summary
    assert summary.index(PITR.replace('"', "&quot;")) < page.index('<h2 id="procedure">')  # above the procedure
    run = drifted_site.results["run"]
    when = datetime.fromisoformat(run["finished_at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert f"Verified in <b>sandbox-drifted (moto, eu-west-1)</b> at {when}" in summary
    (entry,) = drifted_site.results["runbooks"]
    done, total = entry["automated_steps"], entry["steps"]
    assert f"{done} of {total} steps automated ({round(100 * done / total)}%)" in summary
    assert f'<span class="badge fail">{len(failed)} FAIL</span>' in summary


def test_human_steps_are_marked_and_commands_escaped(drifted_site):
    page = drifted_site.page()
    human = [b for b in step_items(page).values() if "human" in b.split(">", 1)[0]]
    assert human and all('<span class="human-label">HUMAN STEP</span>' in b for b in human)
    assert all('<span class="badge manual">MANUAL</span>' in b for b in human)
    # The HTTP step's manual command contains "<api URL>": escaped, never raw markup.
    assert "&lt;api URL&gt;/health/ready" in page and "<api URL>" not in page
    assert "<script" not in page.lower()


def test_markdown_page_is_a_checklist_with_outcomes(drifted_site):
    md = drifted_site.page("deployment/post_deploy_validation.md")
    assert f"- [ ] **Then** {PITR} — **FAIL**" in md
    assert f"  - by hand: `{PITR_MANUAL}`" in md
    assert "  - observed: PointInTimeRecoveryStatus DISABLED" in md
    assert re.search(r"^- \[ \] \*\*HUMAN STEP\*\* .+ — \*\*MANUAL\*\*$", md, re.M)
    assert "## Escalation" in md and "## Rollback" in md


def test_without_results_variables_stay_as_written(tmp_path, drifted_site):
    code, out, err = cli("render", "--config", str(REPO / "runbooks.toml"), "--out", str(tmp_path),
                         "--no-results", "--no-history", str(REPO / POST_DEPLOY))
    assert code == 0, err
    page = (tmp_path / "deployment" / "post_deploy_validation.html").read_text()
    assert "aws dynamodb describe-continuous-backups --table-name {tenants_table}" in page
    assert 'class="badge' not in page and "Not verified here" in page
    (entry,) = drifted_site.results["runbooks"]  # coverage counted from the feature agrees with the run's
    assert f"{entry['automated_steps']} of {entry['steps']} steps automated" in page
    md = (tmp_path / "deployment" / "post_deploy_validation.md").read_text()
    assert '- [ ] **Then** the DynamoDB table "{tenants_table}" has point-in-time recovery enabled\n' in md


# A small runbook with hand-made records: ERROR, SKIPPED, a background that ran twice, and hostile text --------
FEATURE = """\
@owner:<b>ops</b> @severity:high @reviewed:2026-01-01 @operational
Feature: Check <script>alert(1)</script> & friends
  Purpose:
    Show that <b>markup</b> stays text; see `runbooks steps` and features/ops/other.feature.

  References:
    - features/ops/

  Background:
    Given the S3 bucket "{bucket}" exists

  Scenario: Versioning <on>
    Then the S3 bucket "{bucket}" has versioning enabled

  @troubleshooting
  Scenario: Tables
    Symptom: restores fail.
    Root cause: PITR off.
    Resolution: turn PITR on.
    Given the DynamoDB table "t1" is active
    Then the DynamoDB table "t1" has point-in-time recovery enabled
    * manual: tell the <team> channel
"""


def record(scenario: str, step: str, line: int, outcome: Outcome, **kw: str) -> StepRecord:
    return StepRecord(runbook="features/ops/check.feature", scenario=scenario, step=step, outcome=outcome, line=line,
                      keyword=kw.pop("keyword", "Then"), environment="test", **kw)  # type: ignore[arg-type]


@pytest.fixture
def small_site(tmp_path: Path) -> Path:
    config = write_config(tmp_path, """\
        [environments.test]
        aws = { target = "moto", region = "eu-west-1" }
        vars = { bucket = "b-<1>" }
        """)
    (tmp_path / "features" / "ops").mkdir(parents=True)
    (tmp_path / "features" / "ops" / "check.feature").write_text(FEATURE)
    (tmp_path / "features" / "ops" / "other.feature").write_text(FEATURE.replace("Feature: Check", "Feature: Other"))
    records = [
        record("Versioning <on>", 'the S3 bucket "b-<1>" exists', 10, Outcome.PASS, keyword="Given"),
        record("Versioning <on>", 'the S3 bucket "b-<1>" has versioning enabled', 13, Outcome.FAIL,
               expected="versioning Enabled", observed="versioning <Suspended>", hint="enable it"),
        record("Tables", 'the S3 bucket "b-<1>" exists', 10, Outcome.ERROR, keyword="Given",
               observed="AccessDenied on s3:ListBucket", hint="grant s3:ListBucket"),
        record("Tables", 'the DynamoDB table "t1" is active', 20, Outcome.SKIPPED, keyword="Given",
               observed="not run: an earlier step of this scenario did not pass"),
        record("Tables", 'the DynamoDB table "t1" has point-in-time recovery enabled', 21, Outcome.SKIPPED,
               observed="not run: an earlier step of this scenario did not pass"),
        record("Tables", "manual: tell the <team> channel", 22, Outcome.MANUAL, keyword="*"),
    ]
    results = tmp_path / "results.json"
    write_results_json(results, {"environment": "test", "target": "moto", "finished_at": "2026-03-01T10:00:00+00:00"},
                       records)
    code, out, err = cli("render", "--config", str(config), "--results", str(results), "--out", str(tmp_path / "site"))
    assert code == 0, out + err
    return tmp_path / "site"


def test_everything_from_the_feature_and_the_results_is_escaped(small_site):
    page = (small_site / "ops" / "check.html").read_text()
    assert "<title>Check &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends</title>" in page
    assert "<script" not in page and "<b>markup</b>" not in page and "&lt;b&gt;markup&lt;/b&gt;" in page
    assert "owner <b>&lt;b&gt;ops&lt;/b&gt;</b>" in page
    assert "Scenario: Versioning &lt;on&gt;" in page
    assert "<dd>versioning &lt;Suspended&gt;</dd>" in page
    assert "tell the &lt;team&gt; channel" in page
    assert "aws s3api head-bucket --bucket b-&lt;1&gt;" in page  # variables resolved from the results' environment
    md = (small_site / "ops" / "check.md").read_text()
    assert "observed: versioning &lt;Suspended&gt;" in md and "<team>" not in md


def test_error_skipped_background_and_links(small_site):
    page = (small_site / "ops" / "check.html").read_text()
    items = step_items(page)
    background = items['the S3 bucket "b-&lt;1&gt;" exists']
    # The background ran in both scenarios: the worse outcome shows, with each run's evidence.
    assert '<li class="step error" id="line-10">' in background and "error in 1 of 2 runs" in background
    assert "<dt>could not check</dt><dd>AccessDenied on s3:ListBucket</dd>" in background
    assert "in “Tables”" in background
    skipped = items['the DynamoDB table "t1" is active']
    assert '<span class="badge skipped">SKIPPED</span>' in skipped and "not run: an earlier step" in skipped
    assert '<dl class="troubleshooting"><dt>Symptom</dt><dd><p>restores fail.</p></dd>' in page
    assert "2 step(s) need attention: 1 failed, 1 could not be checked" in page
    assert "<b>resolution (from the runbook):</b> turn PITR on." in page
    assert "<code>runbooks steps</code>" in page
    assert '<a href="../ops/other.html">features/ops/other.feature</a>' in page
    assert '<a href="../index.html#category-ops">features/ops/</a>' in page
    assert "5 of 6 steps automated (83%)" in page  # 2 background runs + 4 steps, one of them manual


def test_render_refuses_a_missing_results_file(tmp_path):
    code, _, err = cli("render", "--config", str(REPO / "runbooks.toml"), "--results", str(tmp_path / "nope.json"),
                       "--out", str(tmp_path / "site"), str(REPO / POST_DEPLOY))
    assert code == 2 and f"results file not found: {tmp_path / 'nope.json'}" in err
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = cli("render", "--config", str(REPO / "runbooks.toml"), "--results", str(tmp_path / "bad.json"),
                       "--out", str(tmp_path / "site"), str(REPO / POST_DEPLOY))
    assert code == 2 and "not a runbooks results.json" in err


# The browser ---------------------------------------------------------------------------------------------------
def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp], prev[i], prev[i - bpp]) if i >= bpp else (0, prev[i], 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def count_close(rows: list[bytes], bpp: int, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    r0, g0, b0 = rgb
    return sum(
        1
        for row in rows
        for i in range(0, len(row), bpp)
        if abs(row[i] - r0) <= tolerance and abs(row[i + 1] - g0) <= tolerance and abs(row[i + 2] - b0) <= tolerance
    )


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("RUNBOOKS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (RUNBOOKS_REQUIRE_BROWSER=1): apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return binary


def run_chromium(tmp_path: Path, *args: str) -> bytes:
    """Headless Chromium with a throwaway profile; its output (stdout and stderr)."""
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        output, errors = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # chromium's helpers share its session
        proc.communicate()
        pytest.fail("chromium did not finish within 120 s")
    assert proc.returncode == 0, errors.decode(errors="replace")[-2000:]
    return output


def screenshot(tmp_path: Path, page: Path, name: str, size: tuple[int, int]) -> tuple[int, int, int, list[bytes]]:
    png = tmp_path / f"{name}.png"
    run_chromium(tmp_path, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri())
    assert png.is_file()
    keep = os.environ.get("RUNBOOKS_SCREENSHOTS")  # a folder to keep them in, to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    return decode_png(png.read_bytes())


def test_browser_shows_the_outcome_colours(drifted_site, tmp_path):
    page = drifted_site.out / "deployment" / "post_deploy_validation.html"
    width, height, bpp, rows = screenshot(tmp_path, page, "runbook-page", (1280, 2000))
    assert (width, height) == (1280, 2000)
    red, green = count_close(rows, bpp, FAIL_RGB), count_close(rows, bpp, PASS_RGB)
    # The summary box alone has a red edge (~8 x 600 px) and FAIL/PASS badges of ~70 x 20 px each.
    assert red > 3000, f"only {red} FAIL-red pixels"
    assert green > 1000, f"only {green} PASS-green pixels"
    white = count_close(rows, bpp, (255, 255, 255), 0)
    assert white < width * height * 0.95, "the page looks blank"
    # What the screenshot shows is there: the last full verification and the trend of the four runs.
    history = re.search(r'<p class="history" id="history">.*?</p>', drifted_site.page(), re.S).group(0)
    assert f"Last fully verified in sandbox-drifted: <b>{LAST_VERIFIED}</b>" in history
    assert re.findall(r'<rect class="t-(\w+)"', history) == ["pass", "error", "pass", "fail"]


def test_browser_shows_the_index_with_trends_and_the_failing_list(drifted_site, tmp_path):
    width, height, bpp, rows = screenshot(tmp_path, drifted_site.out / "index.html", "index", (1280, 1000))
    red, green = count_close(rows, bpp, FAIL_RGB), count_close(rows, bpp, PASS_RGB)
    assert red > 2000, f"only {red} FAIL-red pixels"  # the failing list's edge, the FAIL badge, a trend bar
    assert green > 150, f"only {green} PASS-green pixels"  # the two passing runs of the trend
    index = drifted_site.page("index.html")
    row = re.search(r'<td class="verified">(.*?)</td>', index, re.S).group(1)
    assert row.startswith(LAST_VERIFIED[:10] + "<br><svg class=\"trend\"")
    assert re.findall(r'<rect class="t-(\w+)"', row) == ["pass", "error", "pass", "fail"]
    assert "`✓!✓✗`" in drifted_site.page("index.md") and f"**{LAST_VERIFIED}**" in drifted_site.page(
        "deployment/post_deploy_validation.md")


# The search ----------------------------------------------------------------------------------------------------
def search_parts(index: str) -> tuple[list[dict], str]:
    data = re.search(r'<script type="application/json" id="search-index">(.*?)</script>', index, re.S)
    code = re.search(r"<script>\n(.*?)</script>", index, re.S)
    assert data and code
    return json.loads(data.group(1)), code.group(1)


def test_the_search_index_holds_every_step_with_its_anchor(drifted_site):
    entries, code = search_parts(drifted_site.page("index.html"))
    (entry,) = entries
    assert entry["t"].startswith("Post-deployment validation")
    assert entry["u"] == "deployment/post_deploy_validation.html"
    steps = {text: line for line, text in entry["st"]}
    line = steps[f"Then {PITR}"]
    assert f'id="line-{line}"' in drifted_site.page()  # each hit links to its checklist item
    assert "fetch(" not in code and "http" not in code.split("*/", 1)[1]  # no network: works from file://


def test_the_search_finds_a_step_by_a_word_of_its_text(drifted_site, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    entries, code = search_parts(drifted_site.page("index.html"))
    (tmp_path / "search.js").write_text(code)
    (tmp_path / "index.json").write_text(json.dumps(entries))
    program = ("const {search} = require(process.argv[1]); const fs = require('fs');"
               "const index = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));"
               "console.log(JSON.stringify([search(index, 'POINT-IN-TIME tenants'), search(index, 'nothing-like-this'),"
               "search(index, '')]));")
    proc = subprocess.run([node, "-e", program, str(tmp_path / "search.js"), str(tmp_path / "index.json")],
                          capture_output=True, text=True, timeout=60, check=True)
    hits, none, empty = json.loads(proc.stdout)
    (hit,) = hits
    assert hit["url"] == "deployment/post_deploy_validation.html"
    assert [s["text"] for s in hit["steps"]] == [f"Then {PITR}"]
    assert hit["steps"][0]["url"].startswith("deployment/post_deploy_validation.html#line-")
    assert none == [] and empty == []


def test_the_search_runs_in_the_browser_from_the_address(drifted_site, tmp_path):
    index = (drifted_site.out / "index.html").as_uri()
    dom = run_chromium(tmp_path, "--dump-dom", index + "#q=recovery%20enabled").decode()
    results = re.search(r'<ol id="search-results"[^>]*>(.*?)</ol>\s*</form>', dom, re.S).group(1)
    assert PITR in results  # the DOM as serialised: text quotes are not escaped
    assert 'href="deployment/post_deploy_validation.html#line-' in results
    dom = run_chromium(tmp_path, "--dump-dom", index + "#q=zzz-no-such-step").decode()
    assert "Nothing matches" in dom


def test_css_colours_match_the_test(drifted_site):
    page = drifted_site.page()
    assert "--pass: #1a7f37;" in page and "--fail: #d1242f;" in page



# One model of the site, walked by both writers -----------------------------------------------------------------
def test_the_model_holds_raw_text_and_both_formats_walk_it(small_site):
    from runbooks.config import load_config
    from runbooks.render import build, load_results
    from runbooks.render import html as html_writer
    from runbooks.render import markdown as md_writer

    root = small_site.parent
    config = load_config(root / "runbooks.toml")
    site = build(config, [config.features], load_results(root / "results.json"))
    check = next(rb for rb in site.runbooks if rb.source == "features/ops/check.feature")
    assert check.title == "Check <script>alert(1)</script> & friends"  # escaped by the writers, not the model
    assert [g.name for g in site.categories] == ["ops"] and site.run and site.run.where == "test (moto)"
    assert [(p.outcome, p.line) for p in check.problems] == [(Outcome.FAIL, 13), (Outcome.ERROR, 10)]
    human = check.scenarios[1].steps[-1]
    assert human.human and human.text == "tell the <team> channel" and human.outcome is Outcome.MANUAL
    # Both pages are written from this one model, byte for byte what the command wrote.
    assert html_writer.runbook_page(site, check) == (small_site / "ops" / "check.html").read_text()
    assert md_writer.runbook_page(site, check) == (small_site / "ops" / "check.md").read_text()
    assert md_writer.index_page(site) == (small_site / "index.md").read_text()
    lines = [s.line for s in check.background + [s for sc in check.scenarios for s in sc.steps]]
    html_lines = [int(n) for n in re.findall(r'<li class="step[^"]*" id="line-(\d+)">', html_writer.runbook_page(
        site, check))]
    assert html_lines == lines and len(re.findall(r"^- \[ \] ", md_writer.runbook_page(site, check), re.M)) == 5


def test_secret_variables_stay_unresolved_in_every_page(tmp_path):
    config = write_config(tmp_path, """\
        [environments.test]
        aws = { target = "moto", region = "eu-west-1" }
        vars = { bucket = "public-bucket", token = "s3cr3t-token" }
        secrets = ["token"]
        """)
    (tmp_path / "features" / "ops").mkdir(parents=True)
    (tmp_path / "features" / "ops" / "check.feature").write_text(
        'Feature: Secrets\n  Scenario: Buckets\n    Then the S3 bucket "{bucket}" exists\n'
        '    Then the S3 bucket "{token}" exists\n')
    results = tmp_path / "results.json"
    write_results_json(results, {"environment": "test", "finished_at": "2026-03-01T10:00:00+00:00"}, [
        record("Buckets", 'the S3 bucket "public-bucket" exists', 3, Outcome.PASS),
        record("Buckets", 'the S3 bucket "{token}" exists', 4, Outcome.PASS),
    ])
    code, out, err = cli("render", "--config", str(config), "--results", str(results), "--out", str(tmp_path / "site"))
    assert code == 0, out + err
    pages = {p.name: p.read_text() for p in (tmp_path / "site").rglob("*.*")}
    assert all("s3cr3t-token" not in text for text in pages.values())
    assert "aws s3api head-bucket --bucket public-bucket" in pages["check.html"]
    assert "aws s3api head-bucket --bucket {token}" in pages["check.html"]
    assert '- [ ] **Then** the S3 bucket "{token}" exists — **PASS**' in pages["check.md"]


# The index's order, the template, overdue reviews, defaults and procedure runs --------------------------------
def runbook_feature(name: str, severity: str, reviewed: str = "2026-01-01") -> str:
    return (f"@owner:ops @severity:{severity} @reviewed:{reviewed} @operational\nFeature: {name}\n\n"
            "  Scenario: Checks\n    Then the S3 bucket \"b\" exists\n    * manual: tell the team\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Runbooks of several severities and the template, with a results.json in which some of them fail."""
    write_config(tmp_path, '[environments.test]\naws = { target = "moto", region = "eu-west-1" }\n')
    features = tmp_path / "features"
    (features / "ops").mkdir(parents=True)
    runbooks = {"ops/a.feature": ("A high, three failures", "high", 3),
                "ops/b.feature": ("B critical, one", "critical", 1),
                "ops/c.feature": ("C high, five failures", "high", 5), "ops/d.feature": ("D low, passes", "low", 0),
                "TEMPLATE.feature": ("Runbook template", "info", 2)}
    records = []
    for path, (title, severity, failures) in runbooks.items():
        (features / path).write_text(runbook_feature(title, severity))
        for n in range(max(failures, 1)):
            records.append(StepRecord(runbook=f"features/{path}", scenario="Checks", step='the S3 bucket "b" exists',
                                      outcome=Outcome.FAIL if failures else Outcome.PASS, line=5,
                                      keyword="Then", environment="test", severity=severity, observed=f"missing {n}"))
    (tmp_path / "reports").mkdir()
    write_results_json(tmp_path / "reports" / "results.json",
                       {"environment": "test", "finished_at": "2026-03-01T10:00:00+00:00"}, records)
    return tmp_path


def test_failing_runbooks_are_ordered_by_severity_then_failures_and_the_template_is_apart(project):
    code, out, err = cli("render", "--config", str(project / "runbooks.toml"), "--out", str(project / "site"))
    assert code == 0, out + err
    assert f"from results {project / 'reports' / 'results.json'}" in out  # the default results.json
    index = (project / "site" / "index.html").read_text()
    failing = re.search(r"<h2>Runbooks with failing steps</h2>.*?</section>", index, re.S).group(0)
    assert re.findall(r'\.html">([^<]+)</a>', failing) == ["B critical, one", "C high, five failures",
                                                          "A high, three failures"]
    assert "Runbook template" not in failing and "D low" not in failing
    template = index[index.index('<h2 id="template">Template</h2>'):]
    assert '<a href="general/TEMPLATE.html">Runbook template</a>' in template
    body = index.split('<script type="application/json"')[0]  # the search may find it, as any page
    assert body.count("Runbook template") == 1  # not in the category tables, nor the views
    assert "4 runbook(s)." in index
    md = (project / "site" / "index.md").read_text()
    assert md.index("B critical, one") < md.index("C high, five") < md.index("A high, three")
    assert "## Template" in md and "- [Runbook template](general/TEMPLATE.md) `features/TEMPLATE.feature`" in md
    page = (project / "site" / "general" / "TEMPLATE.html").read_text()
    assert "runs it only when it is named" in page


def test_verify_leaves_the_template_out_unless_it_is_named(tmp_path):
    write_config(tmp_path, "[environments.test]\n")
    (tmp_path / "features" / "ops").mkdir(parents=True)
    manual = ("@owner:ops @severity:low @reviewed:2026-01-01 @operational\n"
              "Feature: {}\n  Scenario: S\n    Given manual: x\n")
    (tmp_path / "features" / "TEMPLATE.feature").write_text(manual.format("Template"))
    (tmp_path / "features" / "ops" / "a.feature").write_text(manual.format("A"))
    reports = tmp_path / "reports"
    base = ["verify", "--config", str(tmp_path / "runbooks.toml"), "--no-history", "--report-dir", str(reports)]
    code, out, err = cli(*base)
    assert code == 0, out + err
    assert [r["runbook"] for r in json.loads((reports / "results.json").read_text())["runbooks"]] == [
        "features/ops/a.feature"]
    assert "1 runbook(s)" in out and "[1/1] Runbook: A" in out
    code, out, err = cli(*base, str(tmp_path / "features" / "TEMPLATE.feature"))
    assert code == 0, out + err
    assert [r["runbook"] for r in json.loads((reports / "results.json").read_text())["runbooks"]] == [
        "features/TEMPLATE.feature"]


def test_a_review_older_than_the_max_age_is_flagged(project):
    from datetime import date

    from runbooks.config import load_config
    from runbooks.render import build
    from runbooks.render import html as html_writer

    config = load_config(project / "runbooks.toml")
    (project / "features" / "ops" / "d.feature").write_text(runbook_feature("D low, passes", "low", "2025-01-01"))
    site = build(config, [config.features], None, today=date(2026, 3, 1))
    stale = {rb.title: rb.stale for rb in site.runbooks}
    assert stale["D low, passes"] == "review overdue: last reviewed 424 days ago (more than 180)"
    assert stale["A high, three failures"] == "" and stale["Runbook template"] == ""  # 59 days; the template: never
    d = next(rb for rb in site.runbooks if rb.title == "D low, passes")
    flag = '<span class="flag" title="review overdue: last reviewed 424 days ago (more than 180)">review overdue</span>'
    assert flag in html_writer.runbook_page(site, d)
    assert "1 runbook(s) with a review older than 180 days." in html_writer.index_page(site)
    site = build(config, [config.features], None, max_age=500, today=date(2026, 3, 1))
    assert not [rb for rb in site.runbooks if rb.stale]


def test_render_reads_the_history_beside_the_config_by_default(project):
    from runbooks.history import DEFAULT_PATH

    history = History(project / DEFAULT_PATH)
    run_id = history.start_run({"environment": "test", "started_at": "2026-02-01T10:00:00+00:00"})
    history.add(run_id, StepRecord(runbook="features/ops/d.feature", scenario="Checks", step='the S3 bucket "b" exists',
                                   outcome=Outcome.PASS, line=5, keyword="Then", environment="test"))
    history.finish_run(run_id, {"finished_at": "2026-02-01T10:01:00+00:00"}, 0, "finished")
    history.close()
    config = str(project / "runbooks.toml")
    code, out, err = cli("render", "--config", config, "--out", str(project / "site"))
    assert code == 0, out + err
    assert f"and history {project / DEFAULT_PATH} (1 run(s))" in out
    page = (project / "site" / "ops" / "d.html").read_text()
    assert "Last fully verified in test: <b>2026-02-01 10:01 UTC</b>." in page
    code, out, err = cli("render", "--config", config, "--out", str(project / "bare"), "--no-results", "--no-history")
    assert code == 0 and len(out.splitlines()) == 1, out
    assert 'class="history"' not in (project / "bare" / "ops" / "d.html").read_text()
    code, out, err = cli("render", "--config", config, "--out", str(project / "x"), "--history", str(project / "nope"))
    assert code == 2 and f"--history {project / 'nope'}: no such file" in err


def test_procedure_runs_are_listed_with_their_timelines(project):
    pytest.importorskip("runbooks.timeline")
    from runbooks.history import DEFAULT_PATH

    history = History(project / DEFAULT_PATH)
    run_id = history.start_run({"environment": "test", "started_at": "2026-02-02T08:00:00+00:00", "kind": "procedure",
                                "runbook": "features/ops/a.feature", "operator": "alice"})
    history.add(run_id, StepRecord(runbook="features/ops/a.feature", scenario="Checks", step="manual: tell the team",
                                   outcome=Outcome.MANUAL, line=6, keyword="*", environment="test"))
    history.finish_run(run_id, {"finished_at": "2026-02-02T08:30:00+00:00", "runbook": "features/ops/a.feature",
                                "operator": "alice"}, 0, "finished")
    history.close()
    import sqlite3

    with contextlib.closing(sqlite3.connect(project / DEFAULT_PATH)) as db:
        if "kind" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
            pytest.skip("this history has no runs.kind column (procedure runs) yet")
    code, out, err = cli("render", "--config", str(project / "runbooks.toml"), "--out", str(project / "site"))
    assert code == 0, out + err
    index = (project / "site" / "index.html").read_text()
    listed = index[index.index('<h2 id="procedure-runs">Procedure runs</h2>'):]
    assert f'<a href="procedures/{run_id}.md">2026-02-02 08:00 UTC</a>' in listed and "by alice" in listed
    timeline = (project / "site" / "procedures" / f"{run_id}.md").read_text()
    assert timeline.startswith("# Procedure: ") and "tell the team" in timeline
    page = (project / "site" / "ops" / "a.html").read_text()
    assert f'<a href="../procedures/{run_id}.md">' in page
    assert "Not fully verified in test in the 0 run(s)" in page  # a procedure run is no verification
