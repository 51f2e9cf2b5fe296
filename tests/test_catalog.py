"""Meta tests: the registry carries what the catalogue, preflight and the IAM policy need, and docs are in sync."""

from __future__ import annotations

import re

import pytest

from runbooks.catalog import markdown_catalog
from runbooks.cli import main
from runbooks.registry import REGISTRY, load_step_modules
from tests.conftest import REPO

load_step_modules()
DEFINITIONS = sorted(REGISTRY.values(), key=lambda d: d.phrase)
PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_every_step_explains_itself(definition):
    assert definition.summary, f"{definition.name} needs a docstring: it is the catalogue entry"
    if definition.domain != "manual":
        assert definition.manual, f"{definition.name} needs a manual command (manual=...)"


@pytest.mark.parametrize("definition", [d for d in DEFINITIONS if d.domain.startswith("aws")], ids=lambda d: d.name)
def test_every_aws_step_declares_its_permissions(definition):
    assert definition.permissions, f"{definition.name} must declare the IAM actions it needs"
    for permission in definition.permissions:
        assert PERMISSION.match(permission), f"{definition.name}: {permission!r} is not service:Action"


def test_manual_commands_format_with_the_phrase_fields():
    for d in DEFINITIONS:
        sample = {name: f"<{name}>" for name in d.fields}
        rendered = d.manual_command(sample)
        assert "{" not in rendered.replace("{{", "").replace("%{", ""), (d.name, rendered)


def test_docs_steps_md_is_generated_from_the_registry():
    committed = (REPO / "docs" / "steps.md").read_text(encoding="utf-8")
    assert committed == markdown_catalog(), "docs/steps.md is stale: run `runbooks steps --markdown > docs/steps.md`"


def test_steps_command_searches_the_vocabulary(capsys):
    assert main(["steps", "--search", "point-in-time"]) == 0
    out = capsys.readouterr().out
    assert 'the DynamoDB table "{table}" has point-in-time recovery enabled' in out
    assert "S3:" not in out  # only matching steps, grouped by domain
    assert main(["steps", "--search", "no-such-words-anywhere"]) == 1


def test_docs_runbook_library_md_is_generated_from_the_runbooks():
    from runbooks.config import load_config
    from runbooks.library import COMMAND, markdown_library, problems

    config = load_config(REPO / "runbooks.toml")
    assert problems(config) == []  # every runbook names the seed it implements, every seed entry a runbook
    committed = (REPO / "docs" / "runbook-library.md").read_text(encoding="utf-8")
    assert committed == markdown_library(config), f"docs/runbook-library.md is stale: run `{COMMAND}`"


def test_the_library_page_groups_every_runbook_by_the_seeds_taxonomy():
    from runbooks.config import load_config
    from runbooks.library import entries
    from runbooks.render.model import TAXONOMY, TAXONOMY_ORDER

    found = entries(load_config(REPO / "runbooks.toml"))
    assert {e.group for e in found} == {*TAXONOMY_ORDER, "reference"}  # each group has runbooks; no "other"
    assert {e.key.split("/")[0] for e in found if "/" in e.key} == set(TAXONOMY)  # every folder is mapped
    [template] = [e for e in found if e.group == "reference"]
    assert template.key == "TEMPLATE.feature"


def test_the_rendered_index_has_a_view_by_taxonomy():
    from runbooks.config import load_config
    from runbooks.render.model import TAXONOMY_ORDER, build

    config = load_config(REPO / "runbooks.toml")
    site = build(config, [config.features], None)
    views = dict(site.views)
    groups = {group.name: [rb.source for rb in group.runbooks] for group in views["By taxonomy"]}
    assert list(groups) == list(TAXONOMY_ORDER)  # in the seeds' order
    assert "features/onboarding/developer_environment.feature" in groups["onboarding"]
    assert "features/release/release_validation.feature" in groups["development"]
    assert "features/troubleshooting/cicd.feature" in groups["incident response"]
