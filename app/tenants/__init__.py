"""Tenants: an MSP's account, its settings, and the CLI that creates one."""
