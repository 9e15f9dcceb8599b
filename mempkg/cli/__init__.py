"""The command line, ``python -m mempkg score`` (layer: cli, the top): one score per image of a folder.

* :mod:`~mempkg.cli.main` -- argument parsing, model loading, scoring and the CSV with resume.
"""
