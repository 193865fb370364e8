"""Branding: the model of a tenant's look (model.py), its storage (models.py, store.py), logo handling and the editor."""
