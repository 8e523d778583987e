"""The `tinycnn` command line: the parser (main.py), the commands by family, the progress bars."""
