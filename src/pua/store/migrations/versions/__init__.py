"""Revisions: 0001 Kamailio's table (v7) and version row, 0002 pua's columns."""
