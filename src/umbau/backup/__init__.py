"""Backups you can trust: backup, verify (restore-test), list, prune, restore, copy.

Everything that runs ``pg_dump``/``pg_restore`` lives in this package; the binaries
are found by :mod:`umbau.backup.binaries`.
"""
