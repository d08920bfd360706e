"""The ``pua`` command line."""
