"""Self-serve sign-up (a new workspace and its owner) and the onboarding checklist."""
