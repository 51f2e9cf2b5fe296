"""``docs/runbook-library.md``: the runbook library as one page, generated from the feature files.

Each runbook under the taxonomy group of its folder (the seeds' taxonomy, ``render.model.TAXONOMY``), the
team request it implements (:data:`SEEDS`: the seed file and the procedure it asks for), and its automation
coverage, counted as a run counts it: the Background once per scenario, an outline once per Examples row;
a ``manual:`` step is a step a person performs. Regenerate it with::

    python -m runbooks.library > docs/runbook-library.md

``tests/test_catalog.py`` fails when the page is stale, when a runbook names no seed, or a seed names a
runbook that does not exist.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .config import Config, load_config
from .features import FeatureDoc, discover, parse_feature
from .preflight import display_path
from .registry import MANUAL_PREFIX
from .render.model import TAXONOMY_ORDER, taxonomy_group

COMMAND = "python -m runbooks.library > docs/runbook-library.md"

# The teams' requests (../shared/seeds/ beside the repository): what each asks for, in a line.
SEED_FILES = {
    "000_3b0d2c6fa3243a9c.txt": "Task 2.5 - operational documentation: development, build and deployment, "
                                "emergency, maintenance and QA procedures",
    "001_10269d5247fd3612.txt": "Stage 5 - S3/DynamoDB deployment, promotion, troubleshooting (6 DynamoDB, 6 S3, "
                                "6 CI/CD issues) and rollback runbooks",
    "002_e9c4f4d36ab3b4a2.txt": "Phase 15 - deployment runbook with rollback, operations guide, troubleshooting",
    "003_c88837588d157b00.txt": "Story 8.9 - startup, shutdown, scaling, backup and recovery runbooks, developer "
                                "environment setup, incident response, a template",
    "004_d19f0cee44de3f91.txt": "Runbooks review - missing incident response, onboarding, database, monitoring, "
                                "security, release and capacity runbooks; the taxonomy",
}

# Runbook (path under features/) -> (seed file, the procedure of that seed it implements), first the main one.
SEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "TEMPLATE.feature": (("003_c88837588d157b00.txt", "Task 1: the runbook template"),),
    "onboarding/developer_environment.feature": (
        ("004_d19f0cee44de3f91.txt", "B. Onboarding runbook"),
        ("003_c88837588d157b00.txt", "Epic 0: Developer Environment Setup"),
        ("000_3b0d2c6fa3243a9c.txt", "Development Runbook: environment setup"),
    ),
    "release/release_validation.feature": (
        ("004_d19f0cee44de3f91.txt", "F. Release management: release checklist"),
        ("000_3b0d2c6fa3243a9c.txt", "Quality Assurance: release validation; artifact management"),
    ),
    "deployment/pre_deployment_checklist.feature": (
        ("001_10269d5247fd3612.txt", "Deployment Runbook: Pre-Deployment Checklist"),
        ("002_e9c4f4d36ab3b4a2.txt", "Pre-Deployment Checklist"),
    ),
    "deployment/post_deploy_validation.feature": (
        ("001_10269d5247fd3612.txt", "Deployment Runbook: Post-Deployment Validation"),
        ("002_e9c4f4d36ab3b4a2.txt", "Post-Deployment Verification"),
    ),
    "deployment/post_deploy_validation_prod.feature": (
        ("001_10269d5247fd3612.txt", "Deployment Runbook: PROD Deployment (dual-region, security validations)"),
    ),
    "promotion/dev_to_sit.feature": (("001_10269d5247fd3612.txt", "Promotion Runbook: DEV to SIT"),),
    "promotion/sit_to_prod.feature": (("001_10269d5247fd3612.txt", "Promotion Runbook: SIT to PROD (canary)"),),
    "operations/daily_operations.feature": (
        ("002_e9c4f4d36ab3b4a2.txt", "Operations Guide: Daily Operations, Monitoring Alerts"),
        ("000_3b0d2c6fa3243a9c.txt", "Maintenance Procedures"),
    ),
    "operations/startup.feature": (("003_c88837588d157b00.txt", "startup.md"),),
    "operations/shutdown.feature": (("003_c88837588d157b00.txt", "shutdown.md"),),
    "scaling/scaling_and_capacity.feature": (
        ("004_d19f0cee44de3f91.txt", "G. Capacity Planning"),
        ("003_c88837588d157b00.txt", "scaling.md"),
    ),
    "monitoring/monitoring_and_alerting.feature": (
        ("004_d19f0cee44de3f91.txt", "D. Monitoring & Alerting Runbook"),
        ("002_e9c4f4d36ab3b4a2.txt", "Monitoring Alerts"),
    ),
    "database/backup_verification.feature": (
        ("004_d19f0cee44de3f91.txt", "C. Database Operations: backup schedule and verification"),
    ),
    "database/integrity.feature": (("004_d19f0cee44de3f91.txt", "C. Database Operations: data integrity checks"),),
    "database/migrations.feature": (
        ("004_d19f0cee44de3f91.txt", "C. Database Operations: migration rollback procedures"),
        ("002_e9c4f4d36ab3b4a2.txt", "Deployment Steps: database migrations"),
    ),
    "incident_response/incident_response.feature": (
        ("004_d19f0cee44de3f91.txt", "A. Incident Response Runbook"),
        ("003_c88837588d157b00.txt", "incident-response.md"),
        ("000_3b0d2c6fa3243a9c.txt", "Emergency Procedures: incident response"),
    ),
    "incident_response/security_incident.feature": (
        ("004_d19f0cee44de3f91.txt", "E. Security Incident Response"),
    ),
    "troubleshooting/api.feature": (("002_e9c4f4d36ab3b4a2.txt", "TROUBLESHOOTING.md: Common Issues"),),
    "troubleshooting/dynamodb.feature": (("001_10269d5247fd3612.txt", "Troubleshooting Runbook: DynamoDB (6)"),),
    "troubleshooting/s3.feature": (("001_10269d5247fd3612.txt", "Troubleshooting Runbook: S3 (6)"),),
    "troubleshooting/cicd.feature": (("001_10269d5247fd3612.txt", "Troubleshooting Runbook: CI/CD (6)"),),
    "troubleshooting/websockets.feature": (
        ("002_e9c4f4d36ab3b4a2.txt", "TROUBLESHOOTING.md: WebSocket Connection Failures"),
    ),
    "rollback/emergency_rollback.feature": (
        ("001_10269d5247fd3612.txt", "Rollback Runbook: Emergency Rollback"),
        ("002_e9c4f4d36ab3b4a2.txt", "Rollback Procedure"),
    ),
    "rollback/standard_rollback.feature": (("001_10269d5247fd3612.txt", "Rollback Runbook: Standard Rollback"),),
    "backup_recovery/backup_and_recovery.feature": (
        ("003_c88837588d157b00.txt", "backup.md, recovery.md"),
        ("000_3b0d2c6fa3243a9c.txt", "Emergency Procedures: data recovery"),
    ),
}


@dataclass(frozen=True)
class Entry:
    key: str  # its path under features/: "deployment/pre_deployment_checklist.feature"
    source: str  # as the repository names it: "features/deployment/pre_deployment_checklist.feature"
    title: str
    group: str
    severity: str
    owner: str
    automated: int
    steps: int
    requires: tuple[str, ...]  # the @requires: capabilities its scenarios need

    @property
    def coverage(self) -> str:
        share = round(100 * self.automated / self.steps) if self.steps else 0
        return f"{self.automated} of {self.steps} ({share}%)"


def step_counts(doc: FeatureDoc) -> tuple[int, int]:
    """(automated steps, all steps) as a run counts them."""
    automated = total = 0
    for scenario in doc.scenarios:
        rows = max(len(scenario.examples), 1)
        steps = [s.text for s in doc.background + scenario.steps]
        total += rows * len(steps)
        automated += rows * sum(not text.startswith(MANUAL_PREFIX) for text in steps)
    return automated, total


def entries(config: Config) -> list[Entry]:
    found = []
    for path in discover([config.features]):
        doc = parse_feature(path)
        key = path.resolve().relative_to(config.features.resolve()).as_posix()
        folder = key.split("/")[0] if "/" in key else ""
        automated, total = step_counts(doc)
        requires = sorted({t.name.split(":", 1)[1] for sc in doc.scenarios for t in doc.tags + sc.tags
                           if t.name.startswith("requires:")})
        found.append(Entry(key, display_path(path, config.root), doc.name or key,
                           taxonomy_group(folder) if folder else "reference", doc.tag_value("severity") or "unrated",
                           doc.tag_value("owner") or "unowned", automated, total, tuple(requires)))
    return found


def problems(config: Config) -> list[str]:
    """Runbooks without a seed, seeds naming no runbook, unknown seed files: what keeps the page honest."""
    keys = {e.key for e in entries(config)}
    found = [f"features/{k}: no entry in runbooks.library.SEEDS" for k in sorted(keys - set(SEEDS))]
    found += [f"runbooks.library.SEEDS names features/{k}, which does not exist" for k in sorted(set(SEEDS) - keys)]
    found += [f"features/{k}: unknown seed file {seed}" for k, pairs in sorted(SEEDS.items())
              for seed, _ in pairs if seed not in SEED_FILES]
    return found


def _link(entry: Entry) -> str:
    return f"[{entry.title}](../{entry.source})"


def _seeds(entry: Entry) -> str:
    pairs = SEEDS.get(entry.key, ())
    return "; ".join(f"{seed[:3]}: {procedure}" for seed, procedure in pairs) or "none"


def markdown_library(config: Config | None = None) -> str:
    config = config or load_config()
    found = entries(config)
    order = {name: i for i, name in enumerate((*TAXONOMY_ORDER, "other", "reference"))}
    lines = [
        "# Runbook library",
        "",
        f"Generated from the feature files by `{COMMAND}`; `tests/test_catalog.py` fails when it is stale.",
        "",
        "The runbooks are grouped by the taxonomy the teams' requests propose (seed 004: onboarding, development, "
        "deployment, operations, incident response, recovery); each folder of `features/` belongs to one group "
        "(`runbooks/render/model.py`, `TAXONOMY`), and the rendered site's index has the same view. *Implements* "
        "names the seed (the team's request, `../shared/seeds/`) and the procedure of it the runbook makes "
        "executable. *Automated* counts the steps a run checks among all its steps (the Background once per "
        "scenario); the others are `manual:` steps a person performs. *Runs only with* names the `@requires:` "
        "capabilities of some of its scenarios: environments without them skip those scenarios with the reason, "
        "as the sandboxes do.",
        "",
    ]
    total_automated = sum(e.automated for e in found if e.group != "reference")
    total_steps = sum(e.steps for e in found if e.group != "reference")
    for group in sorted({e.group for e in found}, key=lambda g: (order.get(g, len(order)), g)):
        members = sorted((e for e in found if e.group == group), key=lambda e: e.source)
        folders = sorted({e.key.split("/")[0] + "/" for e in members if "/" in e.key})
        lines += [f"## {group.capitalize()}", ""]
        if folders:
            lines += ["Folders: " + ", ".join(f"`features/{f}`" for f in folders), ""]
        lines += ["| Runbook | Implements (seed: procedure) | Automated steps | Severity | Owner | Runs only with |",
                  "|---|---|---|---|---|---|"]
        for e in members:
            requires = ", ".join(f"`@requires:{r}`" for r in e.requires) or ""
            lines.append(f"| {_link(e)} | {_seeds(e)} | {e.coverage} | {e.severity} | {e.owner} | {requires} |")
        lines.append("")
    share = round(100 * total_automated / total_steps) if total_steps else 0
    lines += [f"In all: {len([e for e in found if e.group != 'reference'])} runbooks, {total_automated} of "
              f"{total_steps} steps automated ({share}%).", "", "## Seeds", "",
              "| Seed file | What it asks for | Runbooks |", "|---|---|---|"]
    for seed, asks in SEED_FILES.items():
        implementing = [e for e in sorted(found, key=lambda e: e.source)
                        if any(s == seed for s, _ in SEEDS.get(e.key, ()))]
        lines.append(f"| `{seed}` | {asks} | " + ", ".join(f"`{e.source}`" for e in implementing) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    config = load_config()
    issues = problems(config)
    for issue in issues:
        print(issue, file=sys.stderr)
    if issues:
        return 1
    sys.stdout.write(markdown_library(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
