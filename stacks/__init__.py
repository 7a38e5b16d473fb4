"""The CDK app's stack and its constructs, one per concern."""
