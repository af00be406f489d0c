"""Argo CD as Sluice reads it: the sync and health of the Applications that deliver each environment."""
