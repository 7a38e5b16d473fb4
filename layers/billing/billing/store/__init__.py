"""The store layer: DynamoDB and S3 behind classes that speak the domain's language.

Nothing outside this package sees a botocore ClientError: conflicts, throttling and
outages become the exceptions in `billing.store.errors`.
"""
