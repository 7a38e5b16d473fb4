"""The operator API's service: the accounts one at a time and the catalog whole, read and
written on the version read, under the rules `billing accounts push` and `billing catalog
push` apply (docs/operator-api.md).

It sits beside billing.corrections, above billing.invoicing (a write keeps the accounts'
due hints as a push does, through its due index) and billing.customer; it reaches AWS only
through billing.store (pyproject's import contracts).
"""
