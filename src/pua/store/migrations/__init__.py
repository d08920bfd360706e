"""Alembic environment and revisions of the ``pua`` table.

:class:`~pua.store.sql.SqlStore` runs them itself when it opens (see
:func:`pua.store.migrate.upgrade`); ``env.py`` also works from the
``alembic`` command line, with the database and table given as
``-x url=... -x table=...``.
"""
