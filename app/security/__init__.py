"""Security mechanisms: the AES-GCM keyring, CSRF, security headers, client IPs."""
