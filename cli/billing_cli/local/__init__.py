"""The embedded local runtime: AWS served by moto in-process, the project's own handlers,
and the pieces of Lambda that moto does not run (the Kinesis event source mapping)."""
