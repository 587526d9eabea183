"""``promptopt study``: many runs (methods x tasks x seeds), evaluated on the test split against
baselines, with paired statistics, a Markdown/JSON report and plots. See docs/architecture.md."""
