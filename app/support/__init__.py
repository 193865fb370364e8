"""Time-limited support access: platform staff get one tenant for at most 60 minutes, with a reason, audited."""
