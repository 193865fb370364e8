"""ConnectWise PSA: the connection settings, the API client and its cache, the typed records, member sync."""
