"""The evidence: experiments over seeds, the challenge's rule, run records, parallel runs, sweeps and
their Optuna study, the checklist that grades a project, export checks, benchmarks and plots."""
