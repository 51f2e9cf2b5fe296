# Troubleshooting the CI/CD pipeline: six known issues, each checked where it can be.
#
# On sandbox-drifted it fails for two reasons: a Terraform state lock held for 3 h 10 min by a CI runner
# (State lock conflicts), and the API answering /health/ready with 503 after the deployment (General
# deployment issues). Workflow validation and approval timeouts live in GitHub: their scenarios are manual.

@owner:platform-team @severity:high @reviewed:2026-12-02 @operational @troubleshooting
Feature: Troubleshooting the CI/CD pipeline
  Purpose:
    One scenario per known issue of the deployment pipeline (GitHub Actions running Terraform against the
    S3 backend with its DynamoDB lock table). Each checks what can be checked of its cause; when the
    check fails, the console prints the scenario's Resolution.

  When to use:
    A workflow run failed or hangs: the validate, plan, approval or apply job, or a deployment that went
    green but left the environment wrong. For the infrastructure itself use features/troubleshooting/s3.feature
    and features/troubleshooting/dynamodb.feature.

  Prerequisites:
    - The failed run's link and its logs (gh run view RUN_ID --log-failed).
    - Read-only AWS access to the environment (`runbooks iam-policy`), including dynamodb:Scan on the lock table;
      actionlint and the Terraform version of the stack on your machine (features/onboarding/).

  Escalation:
    - A lock you cannot attribute, or a state that looks damaged: the platform on-call; never force-unlock
      or push a state alone.
    - PROD apply failed half-way: page the platform on-call at once and tell the Infrastructure Lead; decide
      on features/rollback/emergency_rollback.feature within 15 minutes.

  Rollback:
    A failed apply leaves what it changed: re-apply the previous release (features/rollback/standard_rollback.feature)
    rather than editing resources by hand. A damaged state object is restored from its previous version
    (the state bucket is versioned), by the platform on-call only.

  References:
    - features/deployment/pre_deployment_checklist.feature
    - features/deployment/post_deploy_validation.feature
    - features/rollback/standard_rollback.feature
    - features/release/release_validation.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Workflow validation failures
    Symptom:
      GitHub shows "Invalid workflow file" and runs nothing, or the validate job fails on terraform fmt
      or terraform validate.
    Root cause:
      A YAML or expression error in .github/workflows, an action whose inputs changed, an unformatted
      Terraform file, or a provider or Terraform version the stack's constraints no longer allow.
    Resolution:
      1. actionlint .github/workflows/*.yml on your machine: it names the file, the line and the error.
      2. terraform fmt -check -recursive, then terraform init -backend=false and terraform validate in each stack.
      3. Fix, push, and see the validate job pass before anything else runs.

    Given manual: actionlint .github/workflows/*.yml reports no error
    * manual: terraform fmt -check -recursive and terraform validate pass in each stack (the workflow runs the same commands)

  Scenario: Terraform plan failures
    Symptom:
      The plan job fails with "Error loading state", "AccessDenied" or "NoSuchBucket" on the backend, or
      it plans to create every resource of an environment that exists.
    Root cause:
      The state bucket or its object is not where the backend configuration says (a wrong key or workspace
      gives an empty state, hence "create everything"), or the pipeline's credentials reach another account.
    Resolution:
      1. Stop: never apply a plan that creates an existing environment.
      2. Compare the backend block (bucket, key, region) with what this scenario checks; the account check
         of the Background proves the credentials.
      3. terraform init -reconfigure with the right backend, then plan again.

    Given the S3 bucket "{state_bucket}" exists
    Then the S3 object "platform/terraform.tfstate" exists in the bucket "{state_bucket}"
    And the S3 object "data/terraform.tfstate" exists in the bucket "{state_bucket}"
    And the S3 bucket "{state_bucket}" blocks all public access

  Scenario: Terraform apply failures
    Symptom:
      The apply job stops half-way (a provider error, a quota, "already exists"); the run is red and the
      environment is partly changed.
    Root cause:
      Something changed outside Terraform (a resource created by hand), a service quota, or a permission
      the deploy role lacks. Terraform saved what it did: the state is right, the environment is half-way.
    Resolution:
      1. Read the first error of the apply log; do not re-run blindly.
      2. "already exists": terraform import it; a quota: request the increase; a permission: fix the deploy role.
      3. Plan again and check that it only finishes the change; apply.
      4. If the state object was damaged, restore its previous version from the versioned state bucket
         (aws s3api list-object-versions --bucket BUCKET --prefix KEY), platform on-call only.

    Then the S3 bucket "{state_bucket}" has versioning enabled
    And the S3 bucket "{state_bucket}" is encrypted with "AES256"
    * manual: terraform plan after the fix shows only the rest of the change, no destroy you did not expect

  Scenario: Approval timeout
    Symptom:
      The deploy job waits with "Waiting for review" until the environment's timeout cancels it, or the
      approvers say they were never asked.
    Root cause:
      The required reviewers of the GitHub environment are out of date or away; the notification went to
      a channel nobody reads.
    Resolution:
      1. Fix the reviewers of the environment (Settings, Environments) if they are out of date.
      2. Re-run the workflow from the plan job: a plan is stale once its approval timed out; never apply an old plan.
      3. Ask the approvers directly in #platform-deployments with the run's link.

    Given manual: the GitHub environment lists reviewers who are here today (PROD: the Tech Lead and the Infrastructure Lead)
    * manual: re-run the workflow from the plan job and ask for the approval in #platform-deployments

  Scenario: State lock conflicts
    Symptom:
      Plan or apply fails with "Error acquiring the state lock" and a lock ID, Who and Created.
    Root cause:
      Another run holds the lock (wait for it), or a cancelled or crashed run left it behind (a stale lock).
    Resolution:
      1. The check below names every lock older than 30 minutes, who took it and when.
      2. Ask the person or check the CI job named: make sure the run is really dead.
      3. Only then, in a working directory on that state: terraform force-unlock LOCK_ID; the platform on-call decides.

    Then the Terraform lock table "{lock_table}" holds no lock older than 30 minutes

  Scenario: General deployment issues
    Symptom:
      The pipeline is green, but the environment is not the release: the API is not ready, or it runs the
      previous version.
    Root cause:
      The release's artefact was not published (the deploy took the last one it found), the deploy step
      targeted another environment, or the release does not start with this environment's configuration.
    Resolution:
      1. Check the artefact of the release below, and the deploy job's environment input.
      2. Run features/deployment/post_deploy_validation.feature: it names what is wrong.
      3. If the release itself is broken, roll back with features/rollback/emergency_rollback.feature.

    Then the S3 object "releases/{current_release}/api.zip" exists in the bucket "{artifacts_bucket}"
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms
