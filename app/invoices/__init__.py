"""Invoices: reconstruction from ConnectWise, rendering, the invoices pages, PDFs and public links."""
