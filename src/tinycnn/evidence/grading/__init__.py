"""Grading a submission as handed in (a README, notebooks with their logs, a model.py): its
write-up read with a Markdown parser, its logs, its models inspected in a sandboxed child process,
and the challenge's rules against all of it (tinycnn check on a folder without experiments/)."""
