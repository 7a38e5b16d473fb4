"""The `billing` command's commands, by what they work on; `billing_cli.main` puts them
together under one console script."""
