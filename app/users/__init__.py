"""Users: a person in a tenant (filled by sign-in and by ConnectWise member sync)."""
