"""Background jobs on RQ: JSON-serialised, ids-only arguments (tenant id first), periodic schedule."""
