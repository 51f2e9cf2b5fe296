# Runbook template: copy this file into the folder of its kind (features/deployment/, features/rollback/,
# features/troubleshooting/, ...), then replace every part. It is itself a valid runbook: `runbooks lint`
# checks it and `runbooks verify` runs it (its one check confirms that the run points at the right account).
#
# Tags (on the Feature line; a scenario may override severity or add a class tag):
#   @owner:<team>                                    who keeps the runbook true (and is paged by it)
#   @severity:<critical|high|medium|low|info>        how bad it is when a check of this runbook fails
#   @reviewed:YYYY-MM-DD                             last time a person walked through it; lint warns after 180 days
#   @operational or @integrity                       availability/performance, or data-integrity/audit guarantees
#   @troubleshooting                                 every scenario is a known issue with Symptom/Root cause/Resolution
#   @requires:<aws-backup|docker|hosts|workstation|postgres|redis|prometheus|alertmanager>
#                                                    only where the environment can answer (else recorded as skipped)
#
# Description: `Heading:` paragraphs starting at the margin (indent their continuation lines); all six are
# required. References lists paths relative to the repository root, which must exist.
#
# Steps: one fact per step, in the vocabulary of `runbooks steps`. `Given` steps are preconditions (a failure
# stops the scenario); `Then` steps are all checked. `{name}` is filled from the environment's vars in
# runbooks.toml. What a person must do is a `* manual:` step: shown and reported, never run, never omitted.
# A scenario's first step starts with Given, When or Then (`Given manual: ...` when a person acts first).
# Never start a wrapped line of a scenario description with Given/When/Then/And/But: Gherkin reads it as a step.

@owner:platform-team @severity:info @reviewed:__TODAY__ @operational
Feature: Runbook template (copy me)
  Purpose:
    What this procedure achieves and what it protects, in two or three sentences. This template shows
    the parts every runbook of the library has, and runs as a minimal example.

  When to use:
    The trigger: an alert name, a pipeline stage, a schedule, a symptom a user reports. Say also when
    NOT to use it and which runbook to use instead.

  Prerequisites:
    - Access needed (the read-only policy from `runbooks iam-policy`, VPN, a break-glass role).
    - Tools and information at hand (release tag, change ticket, incident channel).

  Escalation:
    - Who to call, through which channel, and after how long without progress (e.g. page the platform
      on-call after 15 minutes; the Infrastructure Lead for PROD).

  Rollback:
    How to undo what this procedure changes, or "Nothing to roll back: this runbook only reads." with a
    pointer to the rollback runbook where one applies.

  References:
    - features/deployment/
    - runbooks.toml

  Background: the checks run against the intended AWS account
    Given the AWS account is "{account_id}"

  Scenario: One checked fact, then what a person does
    Then the S3 bucket "{artifacts_bucket}" exists
    * manual: record the outcome in the change ticket (link the reports/results.json of this run)

  @troubleshooting
  Scenario: Known issue - the symptom is absent
    Symptom:
      What the on-call engineer sees: the alert, the error message, the failed pipeline step.
    Root cause:
      Why it happens, as far as it is known.
    Resolution:
      The fix in order, with the commands; the console prints this paragraph under a failing scenario.

    Then the S3 bucket "{artifacts_bucket}" exists
