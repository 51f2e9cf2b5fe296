"""The step library, one module per domain. Each module is loaded as a pytest plugin by conftest.py."""

MODULES = ("steps.aws_s3", "steps.aws_dynamodb", "steps.http", "steps.manual")
