"""Packaged demo material: the credit-default data contract (the data itself is generated)."""
