"""The command line, ``python -m heartmula_core``: one module per command (sample.py; decode.py for
``decode`` and ``generate``; batch.py, which runs the batch package; quantize.py, which also defines
``--weight-dtype``), the checks that run before any model loads (checks.py) and a
terminal progress bar (progress.py); main.py parses and turns errors into one line."""
