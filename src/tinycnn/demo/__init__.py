"""`tinycnn demo`: the page where you draw a digit and watch each layer read it (page.py, web/)."""
