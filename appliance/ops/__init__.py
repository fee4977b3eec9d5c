"""The operator's side: metrics, the doctor, backups."""
