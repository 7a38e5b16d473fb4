"""The usage and invoice warehouse: its tables declared once, their rows, their sources
(docs/warehouse.md)."""
