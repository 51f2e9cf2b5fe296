# Onboarding: a developer's environment, from the prerequisites to the first contribution.
#
# On sandbox-drifted it fails twice, for two reasons: the developer (alice) no longer has an MFA device
# (scenario 4), and the API answers /health/ready with 503 (scenario 5). The platform toolchain
# (scenario 2, @requires:workstation) needs a real developer's machine: both sandboxes skip it, with the
# reason; the python3 floor of the runbooks themselves (scenario 3) is checked on the machine running them.

@owner:platform-team @severity:medium @reviewed:2026-12-02 @operational @onboarding
Feature: Onboarding - set up and verify a development environment
  Purpose:
    Take a new developer from nothing to a working environment on the first day: the accounts and
    access to ask for, the toolchain in the versions the platform is built with, credentials that
    reach the right AWS account, a local API that answers, and the repository's tests passing. What
    can be checked is checked here; the rest is a manual step, so "set up" means the same for everyone.

  When to use:
    A developer, a contractor or a new on-call engineer joins; a laptop is replaced; the team raises a
    minimum version (a new Terraform or Python floor: change it in scenario 2 in the same pull request).
    Run it on the developer's machine, with an environment whose hosts name that machine workstation:
    `runbooks verify --env workstation features/onboarding/` (runbooks.toml has an example). Not for
    production access: that is a change ticket the Infrastructure Lead approves.

  Prerequisites:
    - A buddy from the platform team who owns the first day, and the manager's approval for the access
      in scenario 1.
    - The developer's IAM user (or SSO permission set) with the read-only policy of `runbooks iam-policy`,
      created by the platform on-call.

  Escalation:
    - Access still missing after one working day: the platform on-call in #platform-help.
    - A tool cannot be installed in the minimum version (a managed laptop image, an old OS): the buddy
      decides on the team's dev container instead, and files a ticket against the image.

  Rollback:
    Nothing to roll back: the checks only read. Offboarding is the reverse of scenarios 1 and 4: remove the
    access, deactivate the user's access keys and MFA device, then run the credential checks of
    features/incident_response/security_incident.feature to see that nothing was left behind.

  References:
    - README.md
    - docs/architecture.md
    - docs/runbook-library.md
    - features/TEMPLATE.feature
    - features/incident_response/security_incident.feature
    - features/release/release_validation.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: 1 - Prerequisites checklist
    Given manual: GitHub: membership of the organisation and of the platform team (read on the repositories; write after the first reviewed pull request)
    * manual: Slack: #platform-help, #platform-deployments, #incidents; the on-call calendar (read-only until the first shadow shift)
    * manual: AWS: an IAM user (or SSO permission set) for the DEV account with the read-only policy; MFA is assigned at the first sign-in
    * manual: the password manager's "platform" vault: shared service credentials are never sent in chat or e-mail

  @requires:workstation
  Scenario: 2 - The platform toolchain is installed in the team's minimum versions
    Then on host "workstation", the tool "git" is at least version "2.30"
    And on host "workstation", the tool "terraform" is at least version "1.6"
    And on host "workstation", the tool "aws" is at least version "2.13"
    And on host "workstation", the tool "docker" is at least version "24.0"
    * manual: install what is missing or too old from the team's sources (the package manager, tfenv for Terraform, the AWS CLI v2 installer), never a binary from a chat link; open a new shell and run this scenario again

  Scenario: 3 - The runbooks run on this machine
    Then on host "workstation", the tool "python3" is at least version "3.11"
    * manual: install the runbooks in a virtual environment: python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'

  Scenario: 4 - Credentials work and reach the right account
    Then the IAM user "{developer_user}" has an MFA device
    And the S3 bucket "{templates_bucket}" exists
    And the DynamoDB table "{tenants_table}" is active
    * manual: aws sts get-caller-identity shows the developer's own user or role (never the pipeline's user {ci_user}, never a shared one); the account check above proves the account

  Scenario: 5 - Local development verification
    Given manual: start the API and its cache on the machine: docker compose up -d (the repository's compose file)
    Then the service "api" answers GET "/health/live" with status 200 within 500 ms
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    * manual: run the repository's test command, pytest -ra, on a fresh clone: it passes; a failure on a fresh clone goes to #platform-help, never around it
    * manual: runbooks verify exits 0 on the sandbox, and runbooks verify --env sandbox-drifted exits 1: the runbooks themselves work here

  Scenario: 6 - First contribution
    Given manual: read docs/architecture.md and walk through one runbook with the buddy (features/deployment/pre_deployment_checklist.feature is a good first one)
    * manual: open a first small pull request (a wording fix, a stale @reviewed date confirmed with the runbook's owner); CI is green and one reviewer approves
    * manual: the buddy closes the onboarding ticket and tells the manager the developer is set up
