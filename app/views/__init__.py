"""Blueprints that belong to no single feature: health, the dashboard, error pages."""
