"""``python -m eqian`` is the ``eqian`` command."""

from eqian.cli.main import app

app(prog_name="eqian")
