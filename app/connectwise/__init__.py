"""ConnectWise PSA: the connection settings, the API client, payload models, member sync."""
