"""Reports: operations (volumes, overdue, complaint words) and survey results."""
