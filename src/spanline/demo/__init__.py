"""A small, realistic workload used by ``spanline demo``."""
