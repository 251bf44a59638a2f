"""The ``simclr`` command line."""
