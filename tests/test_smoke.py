import boto3

from runbooks.result import Outcome
from steps.aws_s3 import bucket_versioning_enabled
from tests.conftest import evaluate


def test_versioning_pass_and_fail(moto_run):
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="bucket-one", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert evaluate(moto_run, bucket_versioning_enabled, bucket="bucket-one").outcome is Outcome.FAIL
    s3.put_bucket_versioning(Bucket="bucket-one", VersioningConfiguration={"Status": "Enabled"})
    # memoised within the run: a new run would see the change; this one must not re-read
    assert evaluate(moto_run, bucket_versioning_enabled, bucket="bucket-one").outcome is Outcome.FAIL
