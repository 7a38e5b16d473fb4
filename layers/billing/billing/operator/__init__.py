"""The operator API's service: the accounts one at a time and the catalog whole, read and
written on the version read, under the rules `billing accounts push` and `billing catalog
push` apply (docs/operator-api.md)."""
