"""Self-contained HTML reports (``report.html``): a run's trajectory, an evaluation's and a
study's per-example browser. One file each, no network: styles, scripts and plots inline."""
