"""The command line, ``python -m mempkg score`` (layer: cli, the top): one score per image of a folder.

* :mod:`~mempkg.cli.main` -- the entry point: exit codes and error messages.
* :mod:`~mempkg.cli.args` -- the options, their checks and the user-facing error.
* :mod:`~mempkg.cli.inputs` -- the images and captions of a run.
* :mod:`~mempkg.cli.table` -- the output table (CSV or JSON lines) with resume, and the lock on it.
* :mod:`~mempkg.cli.scoring` -- a run: the job, the batches, the record.

Models are read through :mod:`mempkg.models.pretrained`, as the chapters that take a ``model`` read them.
"""
