"""The store layer: DynamoDB and S3 behind classes that speak the domain's language, and the
other AWS calls the project makes (Step Functions, EventBridge, SES; for the command line,
a deployed function and the local runtime's test clock in SSM).

Nothing outside this package sees a botocore ClientError: conflicts, throttling and
outages become the exceptions in `billing.store.errors`.
"""
