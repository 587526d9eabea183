"""MLflow experiment tracking for promptopt: ``promptopt run/study --tracker mlflow``."""
