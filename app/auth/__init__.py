"""Sign-in and access: sessions, the current user and tenant, roles."""
