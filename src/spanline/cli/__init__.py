"""The ``spanline`` command line."""
