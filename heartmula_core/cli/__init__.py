"""The command line, ``python -m heartmula_core``: one module per command (sample.py, decode.py,
generate.py, batch.py, quantize.py), the flags and their translation into the song path's settings
(options.py), the output checks that run before any model loads (checks.py), ``--download``
(first_run.py) and a terminal progress bar (progress.py); main.py parses and turns errors into one
line."""
