"""The `billing` command line and the embedded local runtime. Not deployed."""
